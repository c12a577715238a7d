#include "policy/post_policy.h"

#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "policy/time_format.h"
#include "policy/v4_signing.h"
#include "vectors.h"

namespace uploadbroker::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using testing::ParseIso;
using testing::Vectors;
using Json = nlohmann::ordered_json;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr char kAk[] = "LTAI5tTestAccessKeyId";
constexpr char kSecret[] = "TestAccessKeySecret0123456789abcdef";
constexpr char kToken[] = "TestSecurityTokenCAIS/abc+def==";

std::string Str(const Json& j) { return j.get<std::string>(); }

// The policy text nlohmann::json writes for the vector's input must be
// byte-identical to what ali-oss signed (JSON.stringify), Unicode included.
std::string CompactPolicy(const Json& policy_input) {
  return policy_input.is_string() ? Json::parse(Str(policy_input)).dump()
                                  : policy_input.dump();
}

TEST(PostPolicyV1, MatchesEveryAliOssVector) {
  const Json& vectors = Vectors()["a_postPolicyV1"];
  ASSERT_EQ(vectors.size(), 3u);
  for (const Json& v : vectors) {
    SCOPED_TRACE(Str(v["name"]));
    const Json& fields = v["outputs"]["formFields"];
    std::string policy_json = CompactPolicy(v["inputs"]["policyInput"]);
    EXPECT_EQ(policy_json, Str(v["derived"]["policyJsonSigned"]));
    std::string policy_b64 = common::Base64Encode(policy_json);
    EXPECT_EQ(policy_b64, Str(v["derived"]["stringToSign"]));
    EXPECT_EQ(policy_b64, Str(fields["policy"]));
    EXPECT_EQ(PostSignatureV1(Str(v["inputs"]["accessKeySecret"]), policy_b64),
              Str(fields["Signature"]));
  }
}

TEST(PostPolicyV4, MatchesEveryAliOssVector) {
  const Json& vectors = Vectors()["b_postPolicyV4"];
  ASSERT_EQ(vectors.size(), 2u);
  for (const Json& v : vectors) {
    SCOPED_TRACE(Str(v["name"]));
    const Json& in = v["inputs"];
    const Json& out = v["outputs"];
    absl::Time date = ParseIso(Str(in["signingDateIso"]));
    EXPECT_EQ(V4DateTime(date), Str(v["derived"]["xOssDate"]));
    EXPECT_EQ(V4Date(date), Str(v["derived"]["scopeDate"]));
    std::string policy_json = CompactPolicy(in["policy"]);
    EXPECT_EQ(policy_json, Str(v["derived"]["policyJsonSigned"]));
    std::string policy_b64 = common::Base64Encode(policy_json);
    EXPECT_EQ(policy_b64, Str(v["derived"]["stringToSign"]));
    EXPECT_EQ(policy_b64,
              Str(out["formFieldsInOrder_fileMustBeLast"]["policy"]));
    std::string signature = PostSignatureV4(Str(in["accessKeySecret"]), date,
                                            Str(in["region"]), policy_b64);
    EXPECT_EQ(signature, Str(out["x-oss-signature"]));
    EXPECT_EQ(signature,
              Str(out["formFieldsInOrder_fileMustBeLast"]["x-oss-signature"]));
  }
}

PostPolicyInput VectorInput(const Json& v) {
  // Both V4 vectors: prefix "uploads/user-42/", 1..10 MiB, status 200,
  // signed at 03:04:05Z, valid one hour.
  PostPolicyInput in;
  in.bucket = "examplebucket";
  in.key = "uploads/user-42/";
  in.key_is_prefix = true;
  in.min_size = 1;
  in.max_size = 10485760;
  in.now = ParseIso(Str(v["inputs"]["signingDateIso"]));
  in.expiration = in.now + absl::Hours(1);
  in.region = Str(v["inputs"]["region"]);
  return in;
}

TEST(SignPostPolicy, ReproducesV4PostBasic) {
  const Json& v = Vectors()["b_postPolicyV4"][0];
  ASSERT_EQ(Str(v["name"]), "v4-post-basic");
  SignedPostForm form = SignPostPolicy(VectorInput(v), {kAk, kSecret, "", {}});
  EXPECT_EQ(form.policy_json, Str(v["derived"]["policyJsonSigned"]));
  const Json& expected = v["outputs"]["formFieldsInOrder_fileMustBeLast"];
  EXPECT_THAT(
      form.fields,
      ElementsAre(Pair("key", "uploads/user-42/"),
                  Pair("policy", Str(expected["policy"])),
                  Pair("x-oss-signature-version", "OSS4-HMAC-SHA256"),
                  Pair("x-oss-credential", Str(expected["x-oss-credential"])),
                  Pair("x-oss-date", Str(expected["x-oss-date"])),
                  Pair("x-oss-signature", Str(expected["x-oss-signature"])),
                  Pair("success_action_status", "200")));
}

TEST(SignPostPolicy, ReproducesV4PostStsCallback) {
  const Json& v = Vectors()["b_postPolicyV4"][1];
  ASSERT_EQ(Str(v["name"]), "v4-post-sts-callback");
  ASSERT_EQ(Str(v["inputs"]["stsToken"]), kToken);
  const Json& expected = v["outputs"]["formFieldsInOrder_fileMustBeLast"];
  PostPolicyInput in = VectorInput(v);
  in.callback_b64 = Str(expected["callback"]);
  SignedPostForm form = SignPostPolicy(in, {kAk, kSecret, kToken, {}});
  EXPECT_EQ(form.policy_json, Str(v["derived"]["policyJsonSigned"]));
  EXPECT_THAT(
      form.fields,
      ElementsAre(Pair("key", "uploads/user-42/"),
                  Pair("policy", Str(expected["policy"])),
                  Pair("x-oss-signature-version", "OSS4-HMAC-SHA256"),
                  Pair("x-oss-credential", Str(expected["x-oss-credential"])),
                  Pair("x-oss-date", Str(expected["x-oss-date"])),
                  Pair("x-oss-signature",
                       "76bf6736c9873d7acb73a6e5daa173039f8d791a744f2688a15bfe"
                       "879013ee6d"),
                  Pair("x-oss-security-token", kToken),
                  Pair("success_action_status", "200"),
                  Pair("callback", in.callback_b64)));
}

TEST(SignPostPolicy, V1ExactKeySeveralTypesNoStatus) {
  PostPolicyInput in;
  in.bucket = "b";
  in.key = "a/用户.png";
  in.min_size = 0;
  in.max_size = 100;
  in.content_types = {"image/png", "image/jpeg"};
  in.success_action_status = "";
  in.now = ParseIso("2025-01-02T03:04:05Z");
  in.expiration = in.now + absl::Minutes(15);
  in.v4 = false;
  SignedPostForm form = SignPostPolicy(in, {"AK", "SK", "", {}});
  EXPECT_EQ(form.policy_json,
            "{\"expiration\":\"2025-01-02T03:19:05.000Z\",\"conditions\":["
            "{\"bucket\":\"b\"},[\"content-length-range\",0,100],"
            "[\"eq\",\"$key\",\"a/用户.png\"],"
            "[\"in\",\"$content-type\",[\"image/png\",\"image/jpeg\"]]]}");
  std::string policy_b64 = common::Base64Encode(form.policy_json);
  EXPECT_THAT(
      form.fields,
      ElementsAre(Pair("key", "a/用户.png"), Pair("policy", policy_b64),
                  Pair("OSSAccessKeyId", "AK"),
                  Pair("Signature", PostSignatureV1("SK", policy_b64))));
}

TEST(SignPostPolicy, V1StsOneTypeAndCallback) {
  PostPolicyInput in;
  in.bucket = "b";
  in.key = "k";
  in.max_size = 5;
  in.content_types = {"text/plain"};
  in.callback_b64 = "Y2I=";
  in.success_action_status = "201";
  in.now = ParseIso("2025-01-02T03:04:05Z");
  in.expiration = in.now + absl::Minutes(15);
  in.v4 = false;
  SignedPostForm form = SignPostPolicy(in, {"STS.AK", "SK", "tok", {}});
  EXPECT_EQ(
      form.policy_json,
      "{\"expiration\":\"2025-01-02T03:19:05.000Z\",\"conditions\":["
      "{\"bucket\":\"b\"},[\"content-length-range\",0,5],"
      "[\"eq\",\"$key\",\"k\"],[\"eq\",\"$success_action_status\",\"201\"],"
      "[\"eq\",\"$Content-Type\",\"text/plain\"],"
      "{\"x-oss-security-token\":\"tok\"},{\"callback\":\"Y2I=\"}]}");
  std::string policy_b64 = common::Base64Encode(form.policy_json);
  EXPECT_THAT(form.fields,
              ElementsAre(Pair("key", "k"), Pair("policy", policy_b64),
                          Pair("OSSAccessKeyId", "STS.AK"),
                          Pair("Signature", PostSignatureV1("SK", policy_b64)),
                          Pair("x-oss-security-token", "tok"),
                          Pair("success_action_status", "201"),
                          Pair("Content-Type", "text/plain"),
                          Pair("callback", "Y2I=")));
}

TEST(SignPostPolicy, ForbidOverwritePinsConditionAndField) {
  PostPolicyInput in;
  in.bucket = "b";
  in.key = "k";
  in.max_size = 5;
  in.callback_b64 = "Y2I=";
  in.success_action_status = "";
  in.forbid_overwrite = true;
  in.now = ParseIso("2025-01-02T03:04:05Z");
  in.expiration = in.now + absl::Minutes(15);
  in.v4 = false;
  SignedPostForm form = SignPostPolicy(in, {"AK", "SK", "", {}});
  // The same condition, in the same place, as ali-oss vector v1-post-full.
  EXPECT_EQ(form.policy_json,
            "{\"expiration\":\"2025-01-02T03:19:05.000Z\",\"conditions\":["
            "{\"bucket\":\"b\"},[\"content-length-range\",0,5],"
            "[\"eq\",\"$key\",\"k\"],{\"callback\":\"Y2I=\"},"
            "{\"x-oss-forbid-overwrite\":\"true\"}]}");
  std::string policy_b64 = common::Base64Encode(form.policy_json);
  EXPECT_THAT(form.fields,
              ElementsAre(Pair("key", "k"), Pair("policy", policy_b64),
                          Pair("OSSAccessKeyId", "AK"),
                          Pair("Signature", PostSignatureV1("SK", policy_b64)),
                          Pair("callback", "Y2I="), Pair("x-oss-forbid-overwrite", "true")));
}

TEST(SignPostPolicy, ObjectAclPinsConditionAndField) {
  PostPolicyInput in;
  in.bucket = "b";
  in.key = "k";
  in.max_size = 5;
  in.success_action_status = "";
  in.forbid_overwrite = true;
  in.object_acl = "private";
  in.now = ParseIso("2025-01-02T03:04:05Z");
  in.expiration = in.now + absl::Minutes(15);
  in.v4 = false;
  SignedPostForm form = SignPostPolicy(in, {"AK", "SK", "", {}});
  EXPECT_EQ(form.policy_json,
            "{\"expiration\":\"2025-01-02T03:19:05.000Z\",\"conditions\":["
            "{\"bucket\":\"b\"},[\"content-length-range\",0,5],"
            "[\"eq\",\"$key\",\"k\"],{\"x-oss-forbid-overwrite\":\"true\"},"
            "{\"x-oss-object-acl\":\"private\"}]}");
  std::string policy_b64 = common::Base64Encode(form.policy_json);
  EXPECT_THAT(form.fields,
              ElementsAre(Pair("key", "k"), Pair("policy", policy_b64),
                          Pair("OSSAccessKeyId", "AK"),
                          Pair("Signature", PostSignatureV1("SK", policy_b64)),
                          Pair("x-oss-forbid-overwrite", "true"),
                          Pair("x-oss-object-acl", "private")));
}

TEST(SignPostPolicy, EscapesLikeJsonStringify) {
  PostPolicyInput in;
  in.bucket = "b";
  in.key = "q\"\\/\x01\t\xe2\x80\xa8";  // quote, backslash, slash, C0, U+2028
  in.max_size = 1;
  in.success_action_status = "";
  in.now = ParseIso("2025-01-02T03:04:05Z");
  in.expiration = in.now + absl::Seconds(1);
  in.v4 = false;
  SignedPostForm form = SignPostPolicy(in, {"AK", "SK", "", {}});
  // JSON.stringify output for the same key.
  EXPECT_THAT(form.policy_json,
              ::testing::HasSubstr("[\"eq\",\"$key\",\"q\\\"\\\\/\\u0001\\t"
                                   "\xe2\x80\xa8\"]"));
}

// The policy text is written directly, not through a document tree; it must
// still be exactly what the JSON library prints for the documented
// structure, for every shape of form and for strings that need escaping.
TEST(SignPostPolicy, WritesWhatTheJsonLibraryPrints) {
  const std::vector<std::string> keys = {
      "plain/key.bin", "\xe4\xb8\x8a\xe4\xbc\xa0/\xf0\x9f\x93\xb7.jpg", "q\"\\/\x01\x7f\t\n"};
  const std::vector<std::vector<std::string>> type_sets = {
      {}, {"image/png"}, {"image/png", "text/plain; charset=\"utf-8\""}};
  int checked = 0;
  for (const std::string& key : keys) {
    for (const auto& types : type_sets) {
      for (bool v4 : {true, false}) {
        for (bool sts : {false, true}) {
          PostPolicyInput in;
          in.bucket = "bucket-1";
          in.key = key;
          in.key_is_prefix = (checked % 3) == 1;
          in.min_size = checked;
          in.max_size = int64_t{1} << 40;
          in.content_types = types;
          in.callback_b64 = (checked % 2) ? "eyJjYWxsYmFja1VybCI6Imh0dHA6Ly9leGFtcGxlLmNvbS8ifQ==" : "";
          in.success_action_status = (checked % 4) ? "201" : "";
          in.now = ParseIso("2025-01-02T03:04:05.678Z");
          in.expiration = in.now + absl::Hours(1);
          in.region = "cn-hangzhou";
          in.v4 = v4;
          Credential cred{kAk, kSecret, sts ? "tok\"en/\xc3\xa9" : "", {}};

          Json conditions = Json::array();
          conditions.push_back({{"bucket", in.bucket}});
          if (v4) {
            conditions.push_back({{"x-oss-signature-version", "OSS4-HMAC-SHA256"}});
            conditions.push_back({{"x-oss-credential", V4Credential(kAk, in.now, in.region)}});
            conditions.push_back({{"x-oss-date", V4DateTime(in.now)}});
          }
          conditions.push_back(Json::array({"content-length-range", in.min_size, in.max_size}));
          conditions.push_back(Json::array({in.key_is_prefix ? "starts-with" : "eq", "$key", key}));
          if (!in.success_action_status.empty()) {
            conditions.push_back(Json::array({"eq", "$success_action_status", "201"}));
          }
          if (types.size() == 1) conditions.push_back(Json::array({"eq", "$Content-Type", types[0]}));
          if (types.size() > 1) conditions.push_back(Json::array({"in", "$content-type", Json(types)}));
          if (sts) conditions.push_back({{"x-oss-security-token", cred.security_token}});
          if (!in.callback_b64.empty()) conditions.push_back({{"callback", in.callback_b64}});
          Json policy = Json::object();
          policy["expiration"] = Iso8601Millis(in.expiration);
          policy["conditions"] = conditions;

          SignedPostForm form = SignPostPolicy(in, cred);
          EXPECT_EQ(form.policy_json, policy.dump()) << "form " << checked;
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 36);
}

TEST(SignPostPolicyDeathTest, RejectsInvertedSizeRange) {
  PostPolicyInput in;
  in.bucket = "b";
  in.key = "k";
  in.min_size = 10;
  in.max_size = 9;
  in.now = ParseIso("2025-01-02T03:04:05Z");
  in.expiration = in.now + absl::Hours(1);
  in.region = "cn-hangzhou";
  EXPECT_DEATH(SignPostPolicy(in, {"AK", "SK", "", {}}), "check failed");
}

}  // namespace
}  // namespace uploadbroker::policy
