#include "policy/post_policy.h"

#include <cstdio>

#include "common/check.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "nlohmann/json.hpp"
#include "policy/time_format.h"
#include "policy/v4_signing.h"

namespace uploadbroker::policy {
namespace {

using Json = nlohmann::ordered_json;  // Keeps members in insertion order.

Json Member(absl::string_view name, absl::string_view value) {
  Json object = Json::object();
  object[std::string(name)] = std::string(value);
  return object;
}

// dump() throws only on invalid UTF-8, which the header rules out.
std::string DumpOrDie(const Json& json) {
  try {
    return json.dump();
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "policy JSON: %s\n", e.what());
    UB_CHECK(false && "policy input is not valid UTF-8");
  }
  return {};
}

}  // namespace

std::string PostSignatureV1(absl::string_view secret,
                            absl::string_view policy_b64) {
  return common::Base64Encode(common::HmacSha1(secret, policy_b64));
}

std::string PostSignatureV4(absl::string_view secret, absl::Time date,
                            absl::string_view region,
                            absl::string_view policy_b64) {
  return V4Signature(secret, date, region, policy_b64);
}

SignedPostForm SignPostPolicy(const PostPolicyInput& in,
                              const Credential& cred) {
  UB_CHECK(!in.bucket.empty());
  UB_CHECK(0 <= in.min_size && in.min_size <= in.max_size);
  UB_CHECK(in.expiration > in.now);
  UB_CHECK(!in.v4 || !in.region.empty());
  const bool sts = !cred.security_token.empty();
  const std::string credential =
      in.v4 ? V4Credential(cred.access_key_id, in.now, in.region) : "";
  const std::string date = V4DateTime(in.now);

  Json conditions = Json::array();
  conditions.push_back(Member("bucket", in.bucket));
  if (in.v4) {
    conditions.push_back(Member("x-oss-signature-version", kV4Algorithm));
    conditions.push_back(Member("x-oss-credential", credential));
    conditions.push_back(Member("x-oss-date", date));
  }
  conditions.push_back(
      Json::array({"content-length-range", in.min_size, in.max_size}));
  conditions.push_back(
      Json::array({in.key_is_prefix ? "starts-with" : "eq", "$key", in.key}));
  if (!in.success_action_status.empty()) {
    conditions.push_back(Json::array(
        {"eq", "$success_action_status", in.success_action_status}));
  }
  if (in.content_types.size() == 1) {
    conditions.push_back(
        Json::array({"eq", "$Content-Type", in.content_types.front()}));
  } else if (in.content_types.size() > 1) {
    conditions.push_back(
        Json::array({"in", "$content-type", Json(in.content_types)}));
  }
  if (sts)
    conditions.push_back(Member("x-oss-security-token", cred.security_token));
  if (!in.callback_b64.empty()) {
    conditions.push_back(Member("callback", in.callback_b64));
  }
  Json policy = Json::object();
  policy["expiration"] = Iso8601Millis(in.expiration);
  policy["conditions"] = std::move(conditions);

  SignedPostForm form;
  form.policy_json = DumpOrDie(policy);
  std::string policy_b64 = common::Base64Encode(form.policy_json);
  auto& fields = form.fields;
  fields.emplace_back("key", in.key);
  fields.emplace_back("policy", policy_b64);
  if (in.v4) {
    fields.emplace_back("x-oss-signature-version", std::string(kV4Algorithm));
    fields.emplace_back("x-oss-credential", credential);
    fields.emplace_back("x-oss-date", date);
    fields.emplace_back(
        "x-oss-signature",
        PostSignatureV4(cred.access_key_secret, in.now, in.region, policy_b64));
  } else {
    fields.emplace_back("OSSAccessKeyId", cred.access_key_id);
    fields.emplace_back("Signature",
                        PostSignatureV1(cred.access_key_secret, policy_b64));
  }
  if (sts) fields.emplace_back("x-oss-security-token", cred.security_token);
  if (!in.success_action_status.empty()) {
    fields.emplace_back("success_action_status", in.success_action_status);
  }
  if (in.content_types.size() == 1) {
    fields.emplace_back("Content-Type", in.content_types.front());
  }
  if (!in.callback_b64.empty())
    fields.emplace_back("callback", in.callback_b64);
  return form;
}

}  // namespace uploadbroker::policy
