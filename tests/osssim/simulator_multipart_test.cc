// oss-sim's multipart upload over HTTP, signed as the broker and the SDKs
// sign (policy/presign.h): Initiate, UploadPart, ListParts, Complete (part
// list or x-oss-complete-all, with a callback), Abort, and OSS's errors and
// limits.
#include <curl/curl.h>

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/server.h"
#include "nlohmann/json.hpp"
#include "osssim/simulator.h"
#include "policy/presign.h"
#include "tests/testing/http_get.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::osssim {
namespace {

using ::testing::HasSubstr;

constexpr char kAk[] = "LTAI5tSimTestId";
constexpr char kSk[] = "sim-test-secret";
constexpr char kKey[] = "big/video.bin";

struct Answer {
  long status = 0;
  std::string body;
  std::string headers;
};

Answer Send(const policy::PresignedRequest& signed_request, const std::string& method,
            const std::string& body, std::vector<std::string> extra_headers = {}) {
  Answer a;
  CURL* c = curl_easy_init();
  curl_slist* list = nullptr;
  bool has_type = false;
  for (const auto& [k, v] : signed_request.headers) {
    list = curl_slist_append(list, absl::StrCat(k, ": ", v).c_str());
    has_type |= absl::EqualsIgnoreCase(k, "Content-Type");
  }
  if (!has_type) list = curl_slist_append(list, "Content-Type:");  // curl's POST default
  for (const std::string& h : extra_headers) list = curl_slist_append(list, h.c_str());
  list = curl_slist_append(list, "Expect:");
  curl_easy_setopt(c, CURLOPT_URL, signed_request.url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "PUT" || method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &testing::AppendToString);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &testing::AppendToString);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &a.headers);
  EXPECT_EQ(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  return a;
}

std::string Element(const std::string& xml, const std::string& tag) {
  size_t a = xml.find("<" + tag + ">");
  size_t b = xml.find("</" + tag + ">");
  if (a == std::string::npos || b == std::string::npos) return "";
  a += tag.size() + 2;
  return xml.substr(a, b - a);
}

std::string HeaderValue(const std::string& headers, const std::string& name) {
  size_t a = headers.find(name + ": ");
  if (a == std::string::npos) return "";
  a += name.size() + 2;
  return headers.substr(a, headers.find("\r\n", a) - a);
}

class SimulatorMultipartTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials.access_key_id = kAk;
    so.credentials.access_key_secret = kSk;
    auto sim = Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
  }

  // A request for `key` signed with V4 (or V1 when the test parameter says so).
  policy::PresignedRequest Sign(const std::string& method,
                                std::vector<std::pair<std::string, std::string>> query,
                                std::vector<std::pair<std::string, std::string>> headers = {},
                                std::vector<std::string> additional = {},
                                const std::string& key = kKey) {
    policy::PresignInput in;
    in.method = method;
    in.scheme = "http";
    in.host = absl::StrCat("127.0.0.1:", sim_->port());
    in.path_style = true;
    in.bucket = "devbucket";
    in.key = key;
    in.query = std::move(query);
    in.headers = std::move(headers);
    in.additional_headers = std::move(additional);
    in.now = absl::Now();
    in.expires = absl::Minutes(10);
    in.region = "cn-hangzhou";
    policy::Credential cred;
    cred.access_key_id = kAk;
    cred.access_key_secret = kSk;
    return GetParam() ? policy::PresignV1(in, cred) : policy::PresignV4(in, cred);
  }

  std::string Initiate(std::vector<std::pair<std::string, std::string>> headers = {}) {
    Answer a = Send(Sign("POST", {{"uploads", ""}}, headers), "POST", "");
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(Element(a.body, "Key"), kKey);
    return Element(a.body, "UploadId");
  }

  Answer Part(const std::string& id, int number, const std::string& data) {
    return Send(Sign("PUT", {{"partNumber", absl::StrCat(number)}, {"uploadId", id}}), "PUT",
                data);
  }

  std::string Read(const std::string& key = kKey) {
    return testing::HttpGet(Sign("GET", {}, {}, {}, key).url);
  }

  testing::TempDir dir_;
  std::unique_ptr<Simulator> sim_;
};

INSTANTIATE_TEST_SUITE_P(V4AndV1, SimulatorMultipartTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "V1" : "V4"; });

TEST_P(SimulatorMultipartTest, PartsListedThenCompletedIntoOneObject) {
  std::string id = Initiate({{"Content-Type", "video/mp4"}, {"x-oss-meta-owner", "42"}});
  ASSERT_EQ(id.size(), 32u);
  std::string one(100 * 1024, 'a'), two(100 * 1024, 'b'), three = "tail";
  Answer p2 = Part(id, 2, two);  // out of order on purpose
  Answer p1 = Part(id, 1, one);
  Answer p3 = Part(id, 3, three);
  ASSERT_EQ(p1.status, 200) << p1.body;
  ASSERT_EQ(p2.status, 200) << p2.body;
  ASSERT_EQ(p3.status, 200) << p3.body;
  std::string etag1 = HeaderValue(p1.headers, "ETag");
  EXPECT_EQ(etag1, absl::StrCat("\"", absl::AsciiStrToUpper(common::HexEncode(common::Md5(one))),
                                "\""));

  Answer list = Send(Sign("GET", {{"uploadId", id}}), "GET", "");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_THAT(list.body, HasSubstr("<Part><PartNumber>1</PartNumber>"));
  EXPECT_THAT(list.body, HasSubstr(absl::StrCat("<Size>", one.size(), "</Size>")));
  EXPECT_THAT(list.body, HasSubstr("<Size>4</Size>"));
  Answer page = Send(Sign("GET", {{"max-parts", "2"}, {"uploadId", id}}), "GET", "");
  EXPECT_EQ(Element(page.body, "IsTruncated"), "true");
  EXPECT_EQ(Element(page.body, "NextPartNumberMarker"), "2");

  std::string xml = absl::StrCat(
      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>", etag1,
      "</ETag></Part><Part><PartNumber>2</PartNumber><ETag>", HeaderValue(p2.headers, "ETag"),
      "</ETag></Part><Part><PartNumber>3</PartNumber><ETag>", HeaderValue(p3.headers, "ETag"),
      "</ETag></Part></CompleteMultipartUpload>");
  Answer done = Send(Sign("POST", {{"uploadId", id}}), "POST", xml);
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_THAT(Element(done.body, "ETag"), ::testing::EndsWith("-3&quot;"));
  EXPECT_EQ(Read(), one + two + three);
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
  // The upload is over: its id is unknown from now on.
  Answer again = Part(id, 4, "x");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(Element(again.body, "Code"), "NoSuchUpload");
}

TEST_P(SimulatorMultipartTest, CompleteAllWithCallbackSendsTheCallback) {
  // The application server: records the callback body, answers JSON.
  absl::Mutex mu;
  std::string callback_body;
  http::ServerOptions ho;
  auto receiver = http::Server::Create(ho, [&](http::Request req, http::Responder respond) {
    {
      absl::MutexLock lock(&mu);
      callback_body = req.body;
    }
    http::Response r;
    r.body = R"({"ok":true})";
    respond(std::move(r));
  });
  ASSERT_TRUE(receiver.ok()) << receiver.status();
  nlohmann::json cb = {
      {"callbackUrl", absl::StrCat("http://127.0.0.1:", (*receiver)->port(), "/cb")},
      {"callbackBody", R"({"op":${operation},"size":${size},"object":${object},"etag":${etag}})"},
      {"callbackBodyType", "application/json"}};
  std::string cb64 = common::Base64Encode(cb.dump());

  std::string id = Initiate();
  ASSERT_EQ(Part(id, 1, std::string(100 * 1024, 'x')).status, 200);
  ASSERT_EQ(Part(id, 2, "end").status, 200);
  Answer done = Send(Sign("POST", {{"uploadId", id}},
                          {{"x-oss-callback", cb64}, {"x-oss-complete-all", "yes"}}),
                     "POST", "");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(done.body, R"({"ok":true})");  // the app server's answer, not XML
  absl::MutexLock lock(&mu);
  nlohmann::json got = nlohmann::json::parse(callback_body);
  EXPECT_EQ(got["op"], "CompleteMultipartUpload");
  EXPECT_EQ(got["size"], 100 * 1024 + 3);
  EXPECT_EQ(got["object"], kKey);
  EXPECT_THAT(got["etag"].get<std::string>(), ::testing::EndsWith("-2"));
}

// Only V4 can sign Content-Length (x-oss-additional-headers).
class SimulatorMultipartV4Test : public SimulatorMultipartTest {};
INSTANTIATE_TEST_SUITE_P(V4, SimulatorMultipartV4Test, ::testing::Values(false));

TEST_P(SimulatorMultipartV4Test, SignedContentLengthRefusesALargerPart) {
  std::string id = Initiate();
  policy::PresignedRequest signed_part =
      Sign("PUT", {{"partNumber", "1"}, {"uploadId", id}}, {{"Content-Length", "5"}},
           {"content-length"});
  Answer ok = Send(signed_part, "PUT", "12345");
  EXPECT_EQ(ok.status, 200) << ok.body;
  // curl sends the real length; the signature pinned 5 bytes.
  signed_part.headers.clear();
  Answer bigger = Send(signed_part, "PUT", "123456");
  EXPECT_EQ(bigger.status, 403);
  EXPECT_EQ(Element(bigger.body, "Code"), "SignatureDoesNotMatch");
}

TEST_P(SimulatorMultipartTest, LimitsAndErrorsAsOss) {
  std::string id = Initiate();
  Answer zero = Part(id, 0, "x");
  EXPECT_EQ(zero.status, 400);
  EXPECT_EQ(Element(zero.body, "Code"), "InvalidArgument");
  Answer too_high = Part(id, 10001, "x");
  EXPECT_EQ(Element(too_high.body, "Code"), "InvalidArgument");
  EXPECT_EQ(Part(id, 10000, "x").status, 200);

  ASSERT_EQ(Part(id, 1, "small").status, 200);
  Answer small = Send(Sign("POST", {{"uploadId", id}}, {{"x-oss-complete-all", "yes"}}), "POST", "");
  EXPECT_EQ(small.status, 400);
  EXPECT_EQ(Element(small.body, "Code"), "EntityTooSmall");
  // With x-oss-complete-all: yes the body must be empty (OSS error 0042-00000216).
  Answer all_and_list = Send(Sign("POST", {{"uploadId", id}}, {{"x-oss-complete-all", "yes"}}),
                             "POST",
                             "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                             "<ETag>a</ETag></Part></CompleteMultipartUpload>");
  EXPECT_EQ(all_and_list.status, 400);
  EXPECT_EQ(Element(all_and_list.body, "Code"), "InvalidArgument");

  Answer wrong_etag = Send(Sign("POST", {{"uploadId", id}}), "POST",
                           "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                           "<ETag>\"00\"</ETag></Part></CompleteMultipartUpload>");
  EXPECT_EQ(Element(wrong_etag.body, "Code"), "InvalidPart");
  Answer order = Send(Sign("POST", {{"uploadId", id}}), "POST",
                      "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag>"
                      "</Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part>"
                      "</CompleteMultipartUpload>");
  EXPECT_EQ(Element(order.body, "Code"), "InvalidPartOrder");
  Answer malformed = Send(Sign("POST", {{"uploadId", id}}), "POST", "not xml");
  EXPECT_EQ(Element(malformed.body, "Code"), "MalformedXML");
  // The body is read as XML (ossapi/xml.h), not scanned for tags: a
  // truncated document, a DTD, or Parts outside the root are malformed.
  for (const char* body :
       {"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>",
        "<!DOCTYPE x [<!ENTITY e \"a\">]><CompleteMultipartUpload><Part><PartNumber>1"
        "</PartNumber><ETag>&e;</ETag></Part></CompleteMultipartUpload>",
        "<Other><CompleteMultipartUpload/><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>"
        "</Other>"}) {
    Answer bad = Send(Sign("POST", {{"uploadId", id}}), "POST", body);
    EXPECT_EQ(bad.status, 400) << body;
    EXPECT_EQ(Element(bad.body, "Code"), "MalformedXML") << body;
  }
  // Entities are decoded and pretty-printing is fine.
  Answer entity = Send(Sign("POST", {{"uploadId", id}}), "POST",
                       "<?xml version=\"1.0\"?>\n<CompleteMultipartUpload>\n  <Part>\n"
                       "    <PartNumber>1</PartNumber>\n    <ETag>&quot;00&quot;</ETag>\n  </Part>\n"
                       "</CompleteMultipartUpload>\n");
  EXPECT_EQ(Element(entity.body, "Code"), "InvalidPart");

  // Another key's upload id is no upload of this key.
  Answer other = Send(Sign("GET", {{"uploadId", id}}, {}, {}, "big/other.bin"), "GET", "");
  EXPECT_EQ(Element(other.body, "Code"), "NoSuchUpload");

  // Unsigned or tampered requests are refused before anything happens.
  policy::PresignedRequest tampered = Sign("PUT", {{"partNumber", "2"}, {"uploadId", id}});
  size_t at = tampered.url.find("partNumber=2");
  ASSERT_NE(at, std::string::npos);
  tampered.url.replace(at, 12, "partNumber=3");
  EXPECT_EQ(Element(Send(tampered, "PUT", "x").body, "Code"), "SignatureDoesNotMatch");
}

TEST_P(SimulatorMultipartTest, AbortDropsTheUploadAndItsParts) {
  std::string id = Initiate();
  ASSERT_EQ(Part(id, 1, "data").status, 200);
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 1u);
  Answer abort = Send(Sign("DELETE", {{"uploadId", id}}), "DELETE", "");
  EXPECT_EQ(abort.status, 204) << abort.body;
  EXPECT_EQ(sim_->multipart_uploads_in_progress(), 0u);
  Answer again = Send(Sign("DELETE", {{"uploadId", id}}), "DELETE", "");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(Element(again.body, "Code"), "NoSuchUpload");
  EXPECT_THAT(Read(), HasSubstr("<Code>NoSuchKey</Code>"));  // no object
}

TEST_P(SimulatorMultipartTest, ForbidOverwriteRefusesAnExistingObject) {
  std::string first = Initiate();
  ASSERT_EQ(Part(first, 1, "v1").status, 200);
  ASSERT_EQ(Send(Sign("POST", {{"uploadId", first}}, {{"x-oss-complete-all", "yes"}}), "POST", "")
                .status,
            200);
  Answer refused = Send(Sign("POST", {{"uploads", ""}}, {{"x-oss-forbid-overwrite", "true"}}),
                        "POST", "");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(Element(refused.body, "Code"), "FileAlreadyExists");
}

}  // namespace
}  // namespace uploadbroker::osssim
