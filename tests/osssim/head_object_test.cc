// oss-sim's HeadObject answers as OSS's do, byte for byte where the broker
// reads them: a quoted ETag, Content-Length, Content-Type, Last-Modified,
// x-oss-request-id and x-oss-hash-crc64ecma on 200; 404 without a body for a
// missing object; 403 for a bad signature. Raw libcurl, V4-presigned URLs.
#include <curl/curl.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "osssim/object_store.h"
#include "osssim/simulator.h"
#include "policy/presign.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::osssim {
namespace {

constexpr char kAk[] = "LTAI5tHeadTestId";
constexpr char kSk[] = "head-test-secret";

struct Answer {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
};

size_t OnHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    (*static_cast<std::map<std::string, std::string>*>(out))[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

class HeadObjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials = {kAk, kSk};
    auto sim = Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
  }

  Answer Head(const std::string& key, const std::string& secret = kSk) {
    policy::PresignInput in;
    in.method = "HEAD";
    in.scheme = "http";
    in.host = absl::StrCat("127.0.0.1:", sim_->port());
    in.path_style = true;
    in.bucket = "devbucket";
    in.key = key;
    in.now = absl::Now();
    in.expires = absl::Minutes(1);
    in.region = "cn-hangzhou";
    const std::string url = policy::PresignV4(in, {kAk, secret}).url;
    Answer a;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> c(curl_easy_init(), curl_easy_cleanup);
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &a.headers);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &a.body);
    EXPECT_EQ(curl_easy_perform(c.get()), CURLE_OK);
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &a.status);
    return a;
  }

  testing::TempDir dir_;
  std::unique_ptr<Simulator> sim_;
};

TEST_F(HeadObjectTest, AStoredObjectHasOssHeaders) {
  auto stored = ObjectStore(dir_.File("sim")).Put("devbucket", "uploads/a.png", "png bytes!", "image/png", {});
  ASSERT_TRUE(stored.ok()) << stored.status();
  Answer a = Head("uploads/a.png");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.headers["etag"], stored->etag);
  ASSERT_GE(a.headers["etag"].size(), 2u);
  EXPECT_EQ(a.headers["etag"].front(), '"') << "OSS quotes ETags";
  EXPECT_EQ(a.headers["etag"].back(), '"');
  EXPECT_EQ(a.headers["content-length"], "10");
  EXPECT_EQ(a.headers["content-type"], "image/png");
  EXPECT_EQ(a.headers["x-oss-hash-crc64ecma"], stored->crc64);
  EXPECT_FALSE(a.headers["x-oss-request-id"].empty());
  absl::Time modified;
  std::string err;
  EXPECT_TRUE(absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", a.headers["last-modified"],
                              absl::UTCTimeZone(), &modified, &err))
      << a.headers["last-modified"] << ": " << err;
  EXPECT_TRUE(a.body.empty());
}

TEST_F(HeadObjectTest, AMissingObjectIs404WithoutABody) {
  Answer a = Head("uploads/none.png");
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.headers["content-length"], "0");
  EXPECT_FALSE(a.headers["x-oss-request-id"].empty());
  EXPECT_TRUE(a.body.empty());
}

TEST_F(HeadObjectTest, ABadSignatureIs403) {
  ASSERT_TRUE(ObjectStore(dir_.File("sim")).Put("devbucket", "k", "x", "text/plain", {}).ok());
  Answer a = Head("k", "not-the-secret");
  EXPECT_EQ(a.status, 403);
  EXPECT_EQ(a.headers["content-length"], "0");
}

}  // namespace
}  // namespace uploadbroker::osssim
