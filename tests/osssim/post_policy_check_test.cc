// oss-sim's PostObject checks: every condition kind, expiry, malformed
// policies and both signature versions, against policies built by the
// broker's own signer (policy::SignPostPolicy) or by hand.
#include "osssim/post_policy_check.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "policy/post_policy.h"

namespace uploadbroker::osssim {
namespace {

const SimCredentials kCreds{"AKID", "SECRET"};

FormFields WithPolicy(const std::string& json, FormFields fields = {}) {
  fields["policy"] = common::Base64Encode(json);
  return fields;
}

std::string Policy(const std::string& conditions) {
  return absl::StrCat(R"({"expiration":"2099-01-01T00:00:00.000Z","conditions":[)", conditions, "]}");
}

std::optional<OssError> Check(const std::string& conditions, FormFields fields, int64_t size = 5) {
  return CheckPostPolicy(WithPolicy(Policy(conditions), std::move(fields)), "bkt", size, absl::Now());
}

TEST(PostPolicyCheck, ExactAndEqMatchCaseInsensitiveFieldNames) {
  EXPECT_FALSE(Check(R"({"key":"a.txt"},["eq","$Content-Type","text/plain"])",
                     {{"key", "a.txt"}, {"content-type", "text/plain"}}));
  auto e = Check(R"({"key":"a.txt"})", {{"key", "b.txt"}});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 403);
  EXPECT_EQ(e->code, "AccessDenied");
  EXPECT_NE(e->message.find("Policy Condition failed"), std::string::npos);
}

TEST(PostPolicyCheck, BucketComesFromTheUrl) {
  EXPECT_FALSE(Check(R"({"bucket":"bkt"})", {}));
  EXPECT_TRUE(Check(R"({"bucket":"other"})", {{"bucket", "other"}}));
}

TEST(PostPolicyCheck, StartsWith) {
  EXPECT_FALSE(Check(R"(["starts-with","$key","uploads/"])", {{"key", "uploads/x"}}));
  EXPECT_TRUE(Check(R"(["starts-with","$key","uploads/"])", {{"key", "other/x"}}));
}

TEST(PostPolicyCheck, InAndNotIn) {
  const std::string in = R"(["in","$content-type",["image/png","image/jpeg"]])";
  EXPECT_FALSE(Check(in, {{"content-type", "image/png"}}));
  EXPECT_TRUE(Check(in, {{"content-type", "text/html"}}));
  const std::string not_in = R"(["not-in","$cache-control",["no-cache"]])";
  EXPECT_FALSE(Check(not_in, {{"cache-control", "max-age=1"}}));
  EXPECT_TRUE(Check(not_in, {{"cache-control", "no-cache"}}));
}

TEST(PostPolicyCheck, ContentLengthRange) {
  const std::string range = R"(["content-length-range",2,10])";
  EXPECT_FALSE(Check(range, {}, 10));
  auto big = Check(range, {}, 11);
  ASSERT_TRUE(big);
  EXPECT_EQ(big->code, "EntityTooLarge");
  EXPECT_EQ(big->status, 400);
  auto small = Check(range, {}, 1);
  ASSERT_TRUE(small);
  EXPECT_EQ(small->code, "EntityTooSmall");
  auto bad = Check(R"(["content-length-range",10,2])", {});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->code, "InvalidPolicyDocument");
}

TEST(PostPolicyCheck, ExpiredPolicy) {
  auto e = CheckPostPolicy(
      WithPolicy(R"({"expiration":"2000-01-01T00:00:00Z","conditions":[]})"), "bkt", 1, absl::Now());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 403);
  EXPECT_EQ(e->message, "Invalid according to Policy: Policy expired.");
}

TEST(PostPolicyCheck, MalformedPoliciesAreInvalidPolicyDocument) {
  for (const std::string& json :
       {std::string("not json"), std::string(R"({"expiration":"2099-01-01T00:00:00Z"})"),
        std::string(R"({"expiration":"2099-01-01T00:00:00Z","conditions":[],"extra":1})"),
        Policy("\"scalar\""), Policy(R"(["bogus-op","$key","x"])")}) {
    auto e = CheckPostPolicy(WithPolicy(json), "bkt", 1, absl::Now());
    ASSERT_TRUE(e) << json;
    EXPECT_EQ(e->code, "InvalidPolicyDocument") << json;
  }
  FormFields bad_b64{{"policy", "!!!"}};
  EXPECT_EQ(CheckPostPolicy(bad_b64, "bkt", 1, absl::Now())->code, "InvalidPolicyDocument");
}

FormFields Signed(bool v4) {
  policy::PostPolicyInput in;
  in.bucket = "bkt";
  in.key = "k";
  in.max_size = 10;
  in.now = absl::Now();
  in.expiration = in.now + absl::Hours(1);
  in.region = "cn-hangzhou";
  in.v4 = v4;
  policy::Credential cred;
  cred.access_key_id = "AKID";
  cred.access_key_secret = "SECRET";
  FormFields fields;
  for (const auto& [name, value] : policy::SignPostPolicy(in, cred).fields) {
    fields[absl::AsciiStrToLower(name)] = value;
  }
  return fields;
}

TEST(PostSignature, AcceptsTheBrokersV1AndV4Forms) {
  EXPECT_FALSE(CheckPostSignature(Signed(true), kCreds, absl::Now()));
  EXPECT_FALSE(CheckPostSignature(Signed(false), kCreds, absl::Now()));
  EXPECT_FALSE(CheckPostPolicy(Signed(true), "bkt", 3, absl::Now()));
}

TEST(PostSignature, RejectsWrongSecretMissingPartsAndUnknownKey) {
  SimCredentials wrong{"AKID", "OTHER"};
  EXPECT_EQ(CheckPostSignature(Signed(true), wrong, absl::Now())->code, "SignatureDoesNotMatch");
  EXPECT_EQ(CheckPostSignature(Signed(false), wrong, absl::Now())->code, "SignatureDoesNotMatch");
  FormFields v1 = Signed(false);
  v1.erase("signature");
  EXPECT_EQ(CheckPostSignature(v1, kCreds, absl::Now())->code, "InvalidArgument");
  EXPECT_EQ(CheckPostSignature({}, kCreds, absl::Now())->code, "AccessDenied");
  SimCredentials other_id{"OTHER", "SECRET"};
  EXPECT_EQ(CheckPostSignature(Signed(true), other_id, absl::Now())->code, "InvalidAccessKeyId");
}

}  // namespace
}  // namespace uploadbroker::osssim
