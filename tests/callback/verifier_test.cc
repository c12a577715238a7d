#include "callback/verifier.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "test_signer.h"

namespace uploadbroker::callback {
namespace {

using ::absl::StatusCode;

constexpr absl::string_view kSimUrl =
    "http://oss-sim.test/callback_pub_key.pem";
constexpr absl::string_view kJsonBody =
    R"({"upload_id":"u-1","bucket":"b","object":"a/b.png","size":5})";
constexpr absl::string_view kFormBody =
    "upload_id=u-1&bucket=b&object=a%2Fb.png&size=5&mimeType=image%2Fpng";

const TestSigner& Signer() {
  static const TestSigner* const signer = new TestSigner();
  return *signer;
}

Verifier MakeVerifier(absl::string_view path) {
  std::vector<TrustedKey> extra;
  extra.push_back({std::string(kSimUrl), Signer().Public()});
  absl::StatusOr<Verifier> verifier = Verifier::Create(path, std::move(extra));
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return *std::move(verifier);
}

std::string B64(absl::string_view s) { return common::Base64Encode(s); }

// A callback as OSS would send it, signed by Signer() and naming kSimUrl.
struct Request {
  std::string query;
  std::string body;
  std::string authorization;
  std::string pub_key_url = B64(kSimUrl);
  std::string version = "1.0";
};

Request Signed(absl::string_view decoded_path, absl::string_view query,
               absl::string_view body) {
  Request r;
  r.query = std::string(query);
  r.body = std::string(body);
  r.authorization =
      Signer().Authorization(StringToSign(decoded_path, query, body));
  return r;
}

absl::Status VerifyRequest(const Verifier& v, const Request& r) {
  return v.Verify(r.query, r.body, r.authorization, r.pub_key_url, r.version);
}

TEST(StringToSign, AddsQuestionMarkOnlyWithQuery) {
  EXPECT_EQ(StringToSign("/cb", "", "body"), "/cb\nbody");
  EXPECT_EQ(StringToSign("/cb", "a=1&b=2", "body"), "/cb?a=1&b=2\nbody");
  EXPECT_EQ(StringToSign("/cb", "", ""), "/cb\n");
}

TEST(Verifier, JsonBodyVerifies) {
  Verifier v = MakeVerifier("/oss/callback");
  EXPECT_TRUE(VerifyRequest(v, Signed("/oss/callback", "", kJsonBody)).ok());
}

TEST(Verifier, FormBodyWithQueryVerifies) {
  Verifier v = MakeVerifier("/oss/callback");
  EXPECT_TRUE(
      VerifyRequest(v, Signed("/oss/callback", "src=oss&x=%2F", kFormBody))
          .ok());
}

TEST(Verifier, MissingVersionHeaderIsAccepted) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", kJsonBody);
  r.version = "";
  EXPECT_TRUE(VerifyRequest(v, r).ok());
}

TEST(Verifier, PercentEncodedUnicodePathIsDecodedOnce) {
  Verifier v = MakeVerifier("/oss/%E5%9B%9E%E8%B0%83");
  EXPECT_EQ(v.decoded_path(), "/oss/\xE5\x9B\x9E\xE8\xB0\x83");  // /oss/回调
  EXPECT_TRUE(
      VerifyRequest(v, Signed("/oss/\xE5\x9B\x9E\xE8\xB0\x83", "", kJsonBody))
          .ok());
  EXPECT_FALSE(
      VerifyRequest(v, Signed("/oss/%E5%9B%9E%E8%B0%83", "", kJsonBody)).ok());
}

TEST(Verifier, DoublyEncodedPathIsDecodedOnlyOnce) {
  Verifier v = MakeVerifier("/cb%252F");
  EXPECT_EQ(v.decoded_path(), "/cb%2F");
}

TEST(Verifier, PlusInPathStaysPlus) {
  EXPECT_EQ(MakeVerifier("/a+b").decoded_path(), "/a+b");
}

TEST(Verifier, QueryPresenceMatters) {
  Verifier v = MakeVerifier("/cb");
  // Signed without a query: "/cb\n..."; a bare "?" would change the string.
  Request r = Signed("/cb", "", kJsonBody);
  EXPECT_TRUE(VerifyRequest(v, r).ok());
  r.authorization = Signer().Authorization("/cb?\n" + std::string(kJsonBody));
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
}

TEST(Verifier, FlippedBodyByteFails) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", kJsonBody);
  r.body[r.body.size() / 2] ^= 0x01;
  absl::Status s = VerifyRequest(v, r);
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("signature does not verify"),
            absl::string_view::npos)
      << s;
}

TEST(Verifier, ChangedQueryFails) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "id=1&index=2", kJsonBody);
  r.query = "id=1&index=3";
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
  r.query = "index=2&id=1";  // Reordered.
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
  r.query = "";
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
}

TEST(Verifier, OtherPathFails) {
  Verifier v = MakeVerifier("/cb");
  EXPECT_EQ(VerifyRequest(v, Signed("/cb2", "", kJsonBody)).code(),
            StatusCode::kUnauthenticated);
}

TEST(Verifier, SignatureByAnotherKeyFails) {
  Verifier v = MakeVerifier("/cb");
  TestSigner other;
  Request r = Signed("/cb", "", kJsonBody);
  r.authorization = other.Authorization(StringToSign("/cb", "", kJsonBody));
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
}

TEST(Verifier, TrailingNewlineFails) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", kJsonBody);
  r.body += "\n";
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
}

TEST(Verifier, RefusesKeyUrlsNotAllowed) {
  Verifier v = MakeVerifier("/cb");
  for (absl::string_view url : {
           "http://127.0.0.1/key.pem",
           "https://gosspublic.alicdn.com.evil.example/callback_pub_key_v1.pem",
           "https://gosspublic.alicdn.com@evil/callback_pub_key_v1.pem",
           "https://gosspublic.alicdn.com/callback_pub_key_v2.pem",
           "HTTPS://gosspublic.alicdn.com/callback_pub_key_v1.pem",
           "https://gosspublic.alicdn.com/callback_pub_key_v1.pem?x",
           "http://oss-sim.test/callback_pub_key.pem/",
       }) {
    Request r = Signed("/cb", "", kJsonBody);
    r.pub_key_url = B64(url);
    absl::Status s = VerifyRequest(v, r);
    EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << url;
    EXPECT_EQ(s.message(),
              absl::StrCat("x-oss-pub-key-url not allowed: ", url));
  }
}

TEST(Verifier, RefusesKeyUrlHeaderThatIsNotBase64) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", kJsonBody);
  for (std::string bad : {std::string(kSimUrl), B64(kSimUrl) + "\n",
                          " " + B64(kSimUrl), B64(kSimUrl).substr(1)}) {
    r.pub_key_url = bad;
    absl::Status s = VerifyRequest(v, r);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StartsWith(s.message(), "x-oss-pub-key-url: not base64"))
        << s;
  }
}

TEST(Verifier, RefusesMissingKeyUrl) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", kJsonBody);
  r.pub_key_url = "";
  absl::Status s = VerifyRequest(v, r);
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(s.message(), "x-oss-pub-key-url: missing");
}

TEST(Verifier, EscapesRefusedUrlInMessage) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", kJsonBody);
  r.pub_key_url = B64("http://x/\r\nInjected: yes");
  EXPECT_EQ(VerifyRequest(v, r).message(),
            "x-oss-pub-key-url not allowed: http://x/\\r\\nInjected: yes");
}

TEST(Verifier, RefusesOtherSignatureVersions) {
  Verifier v = MakeVerifier("/cb");
  for (absl::string_view version : {"2.0", "1", "1.0 ", "1.00"}) {
    Request r = Signed("/cb", "", kJsonBody);
    r.version = std::string(version);
    absl::Status s = VerifyRequest(v, r);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << version;
    EXPECT_TRUE(
        absl::StartsWith(s.message(), "x-oss-signature-version unsupported"));
  }
}

TEST(Verifier, RefusesMissingOrMalformedAuthorization) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", kJsonBody);
  r.authorization = "";
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyRequest(v, r).message(), "Authorization: missing");
  r.authorization = "OSS abc:def";
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(VerifyRequest(v, r).message(),
                               "Authorization: not base64"));
}

TEST(Verifier, OssKeyUrlsUseOnlyThePinnedKey) {
  Verifier v = MakeVerifier("/cb");
  for (absl::string_view url : {kOssKeyUrlHttp, kOssKeyUrlHttps}) {
    Request r = Signed("/cb", "", kJsonBody);  // Signed by the test key.
    r.pub_key_url = B64(url);
    EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated) << url;
  }
}

// The signed sample in OSS's older Callback API reference (oss-protocol.md
// §5.2): path /index.php, query ?id=1&index=2, body bucket=yonghu-test.
TEST(Verifier, RealOssSampleVerifiesWithPinnedKey) {
  Verifier v = MakeVerifier("/index.php");
  Request r;
  r.query = "id=1&index=2";
  r.body = "bucket=yonghu-test";
  r.authorization =
      "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/"
      "RaHBovRCE8OkQDjC3uG33esH2txA==";
  r.pub_key_url =
      "aHR0cDovL2dvc3NwdWJsaWMuYWxpY2RuLmNvbS9jYWxsYmFja19wdWJfa2V5X3YxLnBlbQ="
      "=";
  r.version = "";
  EXPECT_TRUE(VerifyRequest(v, r).ok()) << VerifyRequest(v, r);
  r.pub_key_url = B64(kOssKeyUrlHttps);
  EXPECT_TRUE(VerifyRequest(v, r).ok());

  Request spaced = r;
  spaced.query = " id=1&index=2";
  EXPECT_FALSE(VerifyRequest(v, spaced).ok());
  Request no_query = r;
  no_query.query = "";
  EXPECT_FALSE(VerifyRequest(v, no_query).ok());
  Request trailing_newline = r;
  trailing_newline.body += "\n";
  EXPECT_FALSE(VerifyRequest(v, trailing_newline).ok());
}

TEST(Verifier, RealOssSampleFailsUnderSimulatorUrl) {
  Verifier v = MakeVerifier("/index.php");
  Request r;
  r.query = "id=1&index=2";
  r.body = "bucket=yonghu-test";
  r.authorization =
      "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/"
      "RaHBovRCE8OkQDjC3uG33esH2txA==";
  EXPECT_EQ(VerifyRequest(v, r).code(), StatusCode::kUnauthenticated);
}

TEST(VerifierCreate, RefusesBadPaths) {
  for (absl::string_view path :
       {"", "cb", "/cb?src=oss", "/cb#x", "/cb%zz", "/cb%4"}) {
    absl::StatusOr<Verifier> v = Verifier::Create(path, {});
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument) << path;
  }
}

TEST(VerifierCreate, RefusesExtraKeyOnOssUrl) {
  for (absl::string_view url : {kOssKeyUrlHttp, kOssKeyUrlHttps}) {
    std::vector<TrustedKey> extra;
    extra.push_back({std::string(url), Signer().Public()});
    EXPECT_EQ(Verifier::Create("/cb", std::move(extra)).status().code(),
              StatusCode::kInvalidArgument);
  }
}

TEST(VerifierCreate, RefusesEmptyOrRepeatedExtraUrl) {
  std::vector<TrustedKey> empty;
  empty.push_back({"", Signer().Public()});
  EXPECT_FALSE(Verifier::Create("/cb", std::move(empty)).ok());
  std::vector<TrustedKey> twice;
  twice.push_back({std::string(kSimUrl), Signer().Public()});
  twice.push_back({std::string(kSimUrl), TestSigner().Public()});
  EXPECT_FALSE(Verifier::Create("/cb", std::move(twice)).ok());
}

TEST(VerifierCreate, WithoutExtraKeysRefusesSimulatorUrl) {
  absl::StatusOr<Verifier> v = Verifier::Create("/cb", {});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(VerifyRequest(*v, Signed("/cb", "", kJsonBody)).code(),
            StatusCode::kPermissionDenied);
}

TEST(Explain, ReportsValidAndStringToSign) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "a=1", kJsonBody);
  VerifyReport report =
      v.Explain(r.query, r.body, r.authorization, r.pub_key_url, r.version);
  EXPECT_TRUE(report.valid);
  EXPECT_EQ(report.failed_check, "");
  EXPECT_EQ(report.string_to_sign, absl::StrCat("/cb?a=1\n", kJsonBody));
}

TEST(Explain, NamesFailingCheckAndStillShowsStringToSign) {
  Verifier v = MakeVerifier("/cb");
  Request r = Signed("/cb", "", "x");
  r.pub_key_url = B64("http://127.0.0.1/key.pem");
  VerifyReport report =
      v.Explain(r.query, r.body, r.authorization, r.pub_key_url, r.version);
  EXPECT_FALSE(report.valid);
  EXPECT_EQ(report.failed_check,
            "x-oss-pub-key-url not allowed: http://127.0.0.1/key.pem");
  EXPECT_EQ(report.string_to_sign, "/cb\nx");
  EXPECT_EQ(EscapeForDisplay(report.string_to_sign), "/cb\\nx");
}

TEST(EscapeForDisplay, EscapesControlAndNonAsciiBytes) {
  EXPECT_EQ(EscapeForDisplay("plain text ~"), "plain text ~");
  EXPECT_EQ(EscapeForDisplay("a\nb\r\tc\\"), "a\\nb\\r\\tc\\\\");
  EXPECT_EQ(EscapeForDisplay(std::string("\x00\x01\x7f\xe5", 4)),
            "\\x00\\x01\\x7f\\xe5");
}

}  // namespace
}  // namespace uploadbroker::callback
