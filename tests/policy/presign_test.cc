#include "policy/presign.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "vectors.h"

namespace uploadbroker::policy {
namespace {

using testing::ParsedUrl;
using testing::ParseIso;
using testing::ParseUrl;
using testing::Vectors;
using Json = nlohmann::ordered_json;
using Params = std::vector<std::pair<std::string, std::string>>;

std::string Str(const Json& j) { return j.get<std::string>(); }

Params ToParams(const Json& object) {
  Params out;
  for (const auto& [name, value] : object.items()) {
    out.emplace_back(name, Str(value));
  }
  return out;
}

std::map<std::string, std::string> ToMap(const Json& object) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : object.items()) out[name] = Str(value);
  return out;
}

Credential VectorCredential(const Json& in) {
  return {Str(in["accessKeyId"]),
          Str(in["accessKeySecret"]),
          in["stsToken"].is_null() ? "" : Str(in["stsToken"]),
          {}};
}

std::string HostOf(const Json& in) {
  std::string endpoint = Str(in["endpoint"]);
  return endpoint.substr(endpoint.find("://") + 3);
}

// Vector "c": the callback/callback-var query values come from the vector's
// decoded URL (ali-oss built them from a callback option object).
PresignInput V1Input(const Json& v) {
  const Json& in = v["inputs"];
  const Json& decoded = v["outputs"]["queryDecoded"];
  PresignInput p;
  p.method = Str(in["options"]["method"]);
  p.host = HostOf(in);
  p.bucket = Str(in["bucket"]);
  p.key = Str(in["objectName"]);
  if (in["options"].contains("Content-Type")) {
    p.headers.emplace_back("Content-Type", Str(in["options"]["Content-Type"]));
  }
  for (const char* name : {"callback", "callback-var"}) {
    if (decoded.contains(name)) p.query.emplace_back(name, Str(decoded[name]));
  }
  p.now = ParseIso(Str(in["nowIso"]));
  p.expires = absl::Seconds(in["options"]["expires"].get<int64_t>());
  return p;
}

TEST(PresignV1, MatchesEveryAliOssVector) {
  const Json& vectors = Vectors()["c_presignedUrlV1"];
  ASSERT_EQ(vectors.size(), 2u);
  for (const Json& v : vectors) {
    SCOPED_TRACE(Str(v["name"]));
    const Json& out = v["outputs"];
    PresignedRequest r = PresignV1(V1Input(v), VectorCredential(v["inputs"]));
    EXPECT_EQ(r.string_to_sign, Str(v["derived"]["canonicalString"]));
    // ali-oss writes the parameters in the same order, so the whole URL
    // matches.
    EXPECT_EQ(r.url, Str(out["url"]));
    ParsedUrl url = ParseUrl(r.url);
    EXPECT_EQ(url.query, ToMap(out["queryDecoded"]));
    EXPECT_EQ(url.query["Expires"],
              std::to_string(v["derived"]["Expires"].get<int64_t>()));
    EXPECT_EQ(r.headers, ToParams(out["headersClientMustSend"]));
  }
}

TEST(V1CanonicalString, SignsOssHeadersAndOnlySignedSubresources) {
  std::string s = V1CanonicalString("PUT", "md5==", "text/plain", "1700000000",
                                    {{"X-OSS-Meta-B", "  two "},
                                     {"x-oss-callback", "cb"},
                                     {"Content-Length", "9"}},
                                    "bkt", "dir/a b+c.txt",
                                    {{"uploadId", "u1"},
                                     {"partNumber", "2"},
                                     {"acl", ""},
                                     {"foo", "bar"},
                                     {"Expires", "1"},
                                     {"x-oss-process", "image/resize"}});
  EXPECT_EQ(s,
            "PUT\nmd5==\ntext/plain\n1700000000\n"
            "x-oss-callback:cb\nx-oss-meta-b:two\n"
            "/bkt/dir/a b+c.txt?acl&partNumber=2&uploadId=u1"
            "&x-oss-process=image/resize");
}

TEST(PresignV1, SignsXOssHeadersAndPathStyleKeepsSignature) {
  PresignInput p;
  p.host = "examplebucket.oss-cn-hangzhou.aliyuncs.com";
  p.bucket = "examplebucket";
  p.key = "k/用户.bin";
  p.headers = {{"Content-Type", "application/octet-stream"},
               {"x-oss-callback", "Y2I="}};
  p.now = ParseIso("2025-01-02T03:04:05Z");
  p.expires = absl::Minutes(10);
  Credential cred{"AK", "SK", "", {}};
  PresignedRequest virtual_host = PresignV1(p, cred);
  EXPECT_EQ(virtual_host.string_to_sign,
            "PUT\n\napplication/octet-stream\n1735787645\n"
            "x-oss-callback:Y2I=\n/examplebucket/k/用户.bin");
  p.scheme = "http";
  p.host = "127.0.0.1:9000";
  p.path_style = true;
  PresignedRequest path_style = PresignV1(p, cred);
  EXPECT_EQ(path_style.string_to_sign, virtual_host.string_to_sign);
  ParsedUrl a = ParseUrl(virtual_host.url);
  ParsedUrl b = ParseUrl(path_style.url);
  EXPECT_EQ(a.base,
            "https://examplebucket.oss-cn-hangzhou.aliyuncs.com/k/"
            "%E7%94%A8%E6%88%B7.bin");
  EXPECT_EQ(b.base,
            "http://127.0.0.1:9000/examplebucket/k/%E7%94%A8%E6%88%B7.bin");
  EXPECT_EQ(a.query, b.query);
  EXPECT_EQ(a.query.count("security-token"), 0u);
}

PresignInput V4Input(const Json& v) {
  const Json& in = v["inputs"];
  PresignInput p;
  p.method = Str(in["method"]);
  p.host = HostOf(in);
  p.bucket = Str(in["bucket"]);
  p.key = Str(in["objectName"]);
  p.headers = ToParams(in["request"]["headers"]);
  if (in["request"].contains("queries")) {
    p.query = ToParams(in["request"]["queries"]);
  }
  if (!in["additionalHeaders"].is_null()) {
    p.additional_headers =
        in["additionalHeaders"].get<std::vector<std::string>>();
  }
  p.now = ParseIso(Str(in["nowIso"]));
  p.expires = absl::Seconds(in["expiresSeconds"].get<int64_t>());
  p.region = Str(in["region"]);
  return p;
}

TEST(PresignV4, MatchesEveryAliOssVector) {
  const Json& vectors = Vectors()["d_presignedUrlV4"];
  ASSERT_EQ(vectors.size(), 3u);
  for (const Json& v : vectors) {
    SCOPED_TRACE(Str(v["name"]));
    const Json& out = v["outputs"];
    PresignInput p = V4Input(v);
    PresignedRequest r = PresignV4(p, VectorCredential(v["inputs"]));
    EXPECT_EQ(r.string_to_sign, Str(v["derived"]["canonicalRequest"]));
    EXPECT_EQ(V4StringToSign(p.now, p.region, r.string_to_sign),
              Str(v["derived"]["stringToSign"]));
    // ali-oss orders the URL parameters differently; compare them as a map.
    ParsedUrl url = ParseUrl(r.url);
    ParsedUrl expected = ParseUrl(Str(out["url"]));
    EXPECT_EQ(url.base, expected.base);
    EXPECT_EQ(url.query, expected.query);
    EXPECT_EQ(url.query, ToMap(out["queryDecoded"]));
    EXPECT_EQ(url.query["x-oss-signature"],
              Str(out["queryDecoded"]["x-oss-signature"]));
    EXPECT_EQ(r.headers, ToParams(out["headersClientMustSend"]));
  }
}

TEST(PresignV4, SignatureIsLastAndFixedParametersComeFirst) {
  const Json& v = Vectors()["d_presignedUrlV4"][2];
  PresignedRequest r = PresignV4(V4Input(v), VectorCredential(v["inputs"]));
  std::string query = r.url.substr(r.url.find('?') + 1);
  EXPECT_EQ(
      query.rfind("x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=",
                  0),
      0u);
  EXPECT_THAT(
      query, ::testing::HasSubstr(
                 "&x-oss-expires=900&x-oss-additional-headers=content-length"
                 "&x-oss-security-token=TestSecurityTokenCAIS%2Fabc%2Bdef%3D%3D"
                 "&x-oss-signature=0cbd5adf"));
}

TEST(V4CanonicalRequest, SortsQueryByteWiseAndNormalisesHeaders) {
  std::string s =
      V4CanonicalRequest("GET", "b", "a b/c",
                         {{"a", "1"}, {"B", "x y"}, {"empty", ""}, {"a-", "/"}},
                         {{"Content-Type", " text/plain "},
                          {"Host", "h"},
                          {"X-Oss-Meta-A", "v"},
                          {"content-length", "3"}},
                         {"Host", "X-OSS-Meta-A", "content-type", "host"});
  EXPECT_EQ(s,
            "GET\n/b/a%20b/c\n"
            "B=x%20y&a=1&a-=%2F&empty\n"
            "content-type:text/plain\nhost:h\nx-oss-meta-a:v\n\n"
            "host\nUNSIGNED-PAYLOAD");
}

TEST(PresignV4, PathStyleSignsTheSameResource) {
  const Json& v = Vectors()["d_presignedUrlV4"][0];
  PresignInput p = V4Input(v);
  p.scheme = "http";
  p.host = "127.0.0.1:9000";
  p.path_style = true;
  PresignedRequest r = PresignV4(p, VectorCredential(v["inputs"]));
  EXPECT_EQ(r.string_to_sign, Str(v["derived"]["canonicalRequest"]));
  ParsedUrl url = ParseUrl(r.url);
  EXPECT_EQ(url.base,
            "http://127.0.0.1:9000/examplebucket/uploads/user-42/photo.jpg");
  EXPECT_EQ(url.query["x-oss-signature"],
            Str(v["outputs"]["queryDecoded"]["x-oss-signature"]));
}

TEST(PresignV4DeathTest, RejectsMoreThanSevenDays) {
  PresignInput p = V4Input(Vectors()["d_presignedUrlV4"][0]);
  p.expires = absl::Hours(24 * 7) + absl::Seconds(1);
  EXPECT_DEATH(PresignV4(p, {"AK", "SK", "", {}}), "check failed");
}

}  // namespace
}  // namespace uploadbroker::policy
