#include "policy/v4_signing.h"

#include "common/crypto.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "vectors.h"

namespace uploadbroker::policy {
namespace {

using testing::ParseIso;
using testing::Vectors;

TEST(V4Signing, CredentialAndScopeMatchVectors) {
  for (const auto& v : Vectors()["b_postPolicyV4"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const auto& in = v["inputs"];
    absl::Time date = ParseIso(in["signingDateIso"].get<std::string>());
    std::string region = in["region"].get<std::string>();
    EXPECT_EQ(V4Credential(in["accessKeyId"].get<std::string>(), date, region),
              v["derived"]["credential"].get<std::string>());
    EXPECT_EQ(V4Scope(date, region),
              "20250102/cn-hangzhou/oss/aliyun_v4_request");
  }
}

TEST(V4Signing, SigningKeyChainsFourHmacs) {
  absl::Time date = ParseIso("2025-01-02T03:04:05Z");
  std::string expected = common::HmacSha256(
      common::HmacSha256(
          common::HmacSha256(common::HmacSha256("aliyun_v4secret", "20250102"),
                             "cn-hangzhou"),
          "oss"),
      "aliyun_v4_request");
  EXPECT_EQ(V4SigningKey("secret", date, "cn-hangzhou"), expected);
  EXPECT_EQ(V4SigningKey("secret", date, "cn-hangzhou").size(), 32u);
  EXPECT_EQ(V4Signature("secret", date, "cn-hangzhou", "msg"),
            common::HexEncode(common::HmacSha256(expected, "msg")));
}

TEST(V4Signing, KeyDependsOnDayRegionAndSecretOnly) {
  absl::Time date = ParseIso("2025-01-02T03:04:05Z");
  std::string key = V4SigningKey("secret", date, "cn-hangzhou");
  EXPECT_EQ(V4SigningKey("secret", date + absl::Hours(20), "cn-hangzhou"), key);
  EXPECT_NE(V4SigningKey("secret", date + absl::Hours(21), "cn-hangzhou"), key);
  EXPECT_NE(V4SigningKey("secret", date, "cn-shanghai"), key);
  EXPECT_NE(V4SigningKey("secreT", date, "cn-hangzhou"), key);
}

// Keys are remembered between calls; a change of secret (a rotated
// AccessKey), region or day must never sign with the remembered key.
TEST(V4Signing, RememberedKeyFollowsEveryInputChange) {
  absl::Time day1 = ParseIso("2025-01-02T03:04:05Z");
  absl::Time day2 = day1 + absl::Hours(24);
  auto chain = [](const std::string& secret, const std::string& day,
                  const std::string& region) {
    return common::HmacSha256(
        common::HmacSha256(
            common::HmacSha256(common::HmacSha256("aliyun_v4" + secret, day), region),
            "oss"),
        "aliyun_v4_request");
  };
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(V4SigningKey("old", day1, "cn-hangzhou"), chain("old", "20250102", "cn-hangzhou"));
    EXPECT_EQ(V4SigningKey("new", day1, "cn-hangzhou"), chain("new", "20250102", "cn-hangzhou"));
    EXPECT_EQ(V4SigningKey("new", day1, "cn-beijing"), chain("new", "20250102", "cn-beijing"));
    EXPECT_EQ(V4SigningKey("new", day2, "cn-beijing"), chain("new", "20250103", "cn-beijing"));
  }
}

}  // namespace
}  // namespace uploadbroker::policy
