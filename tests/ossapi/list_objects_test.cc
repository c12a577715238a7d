// ListObjectsV2: the answer parser on OSS-shaped documents, and ObjectLister
// against oss-sim (paging, prefixes, continuation tokens, signatures), with
// the simulator's own answers to hand-signed listings.
#include "ossapi/list_objects.h"

#include <curl/curl.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "osssim/object_store.h"
#include "osssim/simulator.h"
#include "policy/presign.h"
#include "tests/testing/http_get.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::ossapi {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kAk[] = "LTAI5tSimTestId";
constexpr char kSk[] = "sim-test-secret";

// The shape of OSS's documented answer, keys URL-encoded.
constexpr char kOssAnswer[] = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult>
  <Name>examplebucket</Name>
  <Prefix>a%2F</Prefix>
  <MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>CgJiYw--</NextContinuationToken>
  <Contents>
    <Key>a%2Fb%20c.txt</Key>
    <LastModified>2020-05-18T05:45:43.000Z</LastModified>
    <ETag>"35A27C2B9EAEEB6F48FD7FB5861D971D"</ETag>
    <Type>Normal</Type>
    <Size>25</Size>
    <StorageClass>Standard</StorageClass>
    <Owner><ID>1</ID><DisplayName>1</DisplayName></Owner>
  </Contents>
  <Contents>
    <Key>a%2F%E4%BD%A0&amp;.png</Key>
    <LastModified>2020-05-18T05:45:47.123Z</LastModified>
    <ETag>"35A27C2B9EAEEB6F48FD7FB5861D971D-3"</ETag>
    <Size>5</Size>
  </Contents>
  <KeyCount>2</KeyCount>
</ListBucketResult>)";

TEST(ParseListObjectsV2, ReadsOssAnswerAndDecodesKeys) {
  absl::StatusOr<ListPage> page = ParseListObjectsV2(kOssAnswer);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "CgJiYw--");
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "a/b c.txt");
  EXPECT_EQ(page->objects[0].size, 25);
  EXPECT_EQ(page->objects[0].etag, "\"35A27C2B9EAEEB6F48FD7FB5861D971D\"");
  EXPECT_EQ(page->objects[0].last_modified, absl::FromUnixSeconds(1589780743));
  EXPECT_EQ(page->objects[1].key, "a/\xE4\xBD\xA0&.png");
  EXPECT_EQ(page->objects[1].last_modified,
            absl::FromUnixSeconds(1589780747) + absl::Milliseconds(123));
}

TEST(ParseListObjectsV2, RefusesWhatIsNotAListing) {
  auto code = [](absl::string_view xml) { return ParseListObjectsV2(xml).status(); };
  EXPECT_THAT(code("<ListBucketResult><IsTruncated>false</IsTruncated>").message(),
              HasSubstr("not well-formed XML"));
  EXPECT_THAT(code("<Error><Code>AccessDenied</Code></Error>").message(),
              HasSubstr("<Error>, not <ListBucketResult>"));
  EXPECT_THAT(code("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").message(),
              HasSubstr("without a NextContinuationToken"));
  EXPECT_THAT(code("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
                   "<LastModified>yesterday</LastModified><Size>1</Size></Contents>"
                   "</ListBucketResult>")
                  .message(),
              HasSubstr("LastModified 'yesterday'"));
  EXPECT_THAT(code("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
                   "<LastModified>2020-05-18T05:45:43.000Z</LastModified><Size>-1</Size>"
                   "</Contents></ListBucketResult>")
                  .message(),
              HasSubstr("Size"));
}

class ObjectListerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osssim::SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials = {kAk, kSk};
    auto sim = osssim::Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    bucket_.name = "devbucket";
    bucket_.region = "cn-hangzhou";
    bucket_.endpoint = absl::StrCat("http://127.0.0.1:", sim_->port());
    bucket_.api_host = bucket_.public_host = absl::StrCat("127.0.0.1:", sim_->port());
    bucket_.path_style = true;
    bucket_.scheme = "http";
    creds_ = Creds(kSk);
  }

  std::unique_ptr<credentials::CredentialProvider> Creds(const std::string& secret) {
    config::CredentialSource source;
    source.access_key_id_file = dir_.WriteFile("ak", kAk);
    source.access_key_secret_file = dir_.WriteFile("sk-" + secret, secret);
    auto creds = credentials::CredentialProvider::Create(source, &clock_);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return creds.ok() ? *std::move(creds) : nullptr;
  }

  void Put(const std::string& key) {
    osssim::ObjectStore store(dir_.File("sim"));
    ASSERT_TRUE(store.Put("devbucket", key, "data:" + key, "text/plain", {}).ok());
  }

  // GET /?<query> on the bucket, V4-signed with the simulator's key.
  std::pair<long, std::string> RawList(std::vector<std::pair<std::string, std::string>> query) {
    policy::PresignInput in;
    in.method = "GET";
    in.scheme = "http";
    in.host = bucket_.api_host;
    in.path_style = true;
    in.bucket = "devbucket";
    in.query = std::move(query);
    in.now = absl::Now();
    in.expires = absl::Minutes(1);
    in.region = "cn-hangzhou";
    policy::PresignedRequest signed_req = policy::PresignV4(in, {kAk, kSk, "", absl::InfiniteFuture()});
    std::pair<long, std::string> answer;
    CURL* c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, signed_req.url.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &testing::AppendToString);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer.second);
    EXPECT_EQ(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &answer.first);
    curl_easy_cleanup(c);
    return answer;
  }

  static std::vector<std::string> Keys(const ListPage& page) {
    std::vector<std::string> keys;
    for (const ListedObject& o : page.objects) keys.push_back(o.key);
    return keys;
  }

  testing::TempDir dir_;
  common::RealClock clock_;
  std::unique_ptr<osssim::Simulator> sim_;
  config::Bucket bucket_;
  std::unique_ptr<credentials::CredentialProvider> creds_;
};

TEST_F(ObjectListerTest, PagesThroughAPrefixInKeyOrder) {
  for (const char* key : {"p/c", "p/a", "p/b b", "p/\xE4\xBD\xA0", "q/a", "p"}) Put(key);
  ObjectLister lister(*creds_, clock_, {/*page_size=*/2, /*max_pages=*/10, absl::Seconds(5)});
  auto first = lister.List(bucket_, "p/", "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Keys(*first), ElementsAre("p/a", "p/b b"));
  EXPECT_TRUE(first->truncated);
  EXPECT_EQ(first->objects[0].size, 8);  // "data:p/a"
  EXPECT_EQ(first->objects[0].etag.front(), '"');
  EXPECT_LE(absl::Now() - first->objects[0].last_modified, absl::Minutes(1));
  auto second = lister.List(bucket_, "p/", first->next_token);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Keys(*second), ElementsAre("p/c", "p/\xE4\xBD\xA0"));
  EXPECT_FALSE(second->truncated);  // the last two keys fill the page exactly
  EXPECT_TRUE(second->next_token.empty());
}

TEST_F(ObjectListerTest, FindFirstStopsAtAMatchAndAtItsBound) {
  for (int i = 0; i < 7; ++i) Put(absl::StrCat("p/", i));
  ObjectLister lister(*creds_, clock_, {/*page_size=*/2, /*max_pages=*/3, absl::Seconds(5)});
  auto found = lister.FindFirst(bucket_, "p/", [](const ListedObject& o) { return o.key == "p/4"; });
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->key, "p/4");
  auto none = lister.FindFirst(bucket_, "q/", [](const ListedObject&) { return true; });
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  // Seven keys at two a page need four pages; three are allowed.
  auto bounded = lister.FindFirst(bucket_, "p/", [](const ListedObject&) { return false; });
  EXPECT_EQ(bounded.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(bounded.status().message(), HasSubstr("more than 3 pages"));
}

TEST_F(ObjectListerTest, AWrongKeyIsRefusedBySignature) {
  Put("p/a");
  auto wrong = Creds("not-the-secret");
  ObjectLister lister(*wrong, clock_, {});
  auto page = lister.List(bucket_, "p/", "");
  EXPECT_EQ(page.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(page.status().message(), HasSubstr("403 SignatureDoesNotMatch"));
}

TEST_F(ObjectListerTest, SimulatorAnswersAsOss) {
  for (const char* key : {"p/a&b", "p/b", "p/c"}) Put(key);
  auto [status, body] = RawList({{"list-type", "2"}, {"prefix", "p/"}, {"max-keys", "1"},
                                 {"start-after", "p/a&b"}});
  EXPECT_EQ(status, 200) << body;
  EXPECT_THAT(body, HasSubstr("<StartAfter>p/a&amp;b</StartAfter>"));
  EXPECT_THAT(body, HasSubstr("<MaxKeys>1</MaxKeys>"));
  EXPECT_THAT(body, HasSubstr("<IsTruncated>true</IsTruncated>"));
  EXPECT_THAT(body, HasSubstr("<NextContinuationToken>"));
  EXPECT_THAT(body, HasSubstr("<Key>p/b</Key>"));
  EXPECT_THAT(body, HasSubstr("<KeyCount>1</KeyCount>"));
  EXPECT_THAT(body, HasSubstr("<Type>Normal</Type><Size>"));
  auto all = RawList({{"list-type", "2"}, {"prefix", "p/"}});
  EXPECT_THAT(all.second, HasSubstr("<Key>p/a&amp;b</Key>"));
  EXPECT_THAT(all.second, HasSubstr("<KeyCount>3</KeyCount>"));
  EXPECT_THAT(all.second, HasSubstr("<MaxKeys>100</MaxKeys>"));

  for (const char* bad : {"0", "1001", "ten"}) {
    auto r = RawList({{"list-type", "2"}, {"max-keys", bad}});
    EXPECT_EQ(r.first, 400) << bad;
    EXPECT_THAT(r.second, HasSubstr("<Code>InvalidArgument</Code>"));
  }
  auto token = RawList({{"list-type", "2"}, {"continuation-token", "not hex"}});
  EXPECT_EQ(token.first, 400);
  auto encoding = RawList({{"list-type", "2"}, {"encoding-type", "base64"}});
  EXPECT_EQ(encoding.first, 400);
  // Unsigned: refused.
  EXPECT_THAT(testing::HttpGet(absl::StrCat("http://", bucket_.api_host, "/devbucket/?list-type=2")),
              HasSubstr("<Code>AccessDenied</Code>"));
}

}  // namespace
}  // namespace uploadbroker::ossapi
