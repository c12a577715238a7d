#include "policy/post_policy.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "nlohmann/json.hpp"
#include "policy/presign.h"
#include "policy/time_format.h"
#include "policy/v4_signing.h"

namespace uploadbroker::policy {
namespace {

// dump() throws only on invalid UTF-8, which the header rules out.
std::string DumpOrDie(const nlohmann::json& json) {
  try {
    return json.dump();
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "policy JSON: %s\n", e.what());
    UB_CHECK(false && "policy input is not valid UTF-8");
  }
  return {};
}

// The policy is written as text rather than built as a document tree and
// dumped: a tree costs two dozen allocations per form. Every string still
// comes out as the JSON library prints it. Printable ASCII other than '"'
// and '\' is the common case (names, dates, base64, most keys) and the
// library prints it unchanged between quotes, so it is copied; any other
// string is handed to the library.
void AppendString(std::string& out, absl::string_view s) {
  const bool verbatim = std::all_of(s.begin(), s.end(), [](char c) {
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (verbatim) {
    absl::StrAppend(&out, "\"", s, "\"");
  } else {
    out += DumpOrDie(nlohmann::json(std::string(s)));
  }
}

// {"name":"value"}
void AppendMember(std::string& out, absl::string_view name, absl::string_view value) {
  out += '{';
  AppendString(out, name);
  out += ':';
  AppendString(out, value);
  out += '}';
}

// ["op","$field","value"]
void AppendMatch(std::string& out, absl::string_view op, absl::string_view field,
                 absl::string_view value) {
  absl::StrAppend(&out, "[\"", op, "\",\"", field, "\",");
  AppendString(out, value);
  out += ']';
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
  SignedPostForm form;

  std::string& json = form.policy_json;
  json.reserve(720 + in.key.size() + cred.security_token.size() + in.callback_b64.size());
  json = "{\"expiration\":";
  AppendString(json, Iso8601Millis(in.expiration));
  json += ",\"conditions\":[";
  AppendMember(json, "bucket", in.bucket);
  if (in.v4) {
    json += ',';
    AppendMember(json, "x-oss-signature-version", kV4Algorithm);
    json += ',';
    AppendMember(json, "x-oss-credential", credential);
    json += ',';
    AppendMember(json, "x-oss-date", date);
  }
  absl::StrAppend(&json, ",[\"content-length-range\",", in.min_size, ",", in.max_size, "],");
  AppendMatch(json, in.key_is_prefix ? "starts-with" : "eq", "$key", in.key);
  if (!in.success_action_status.empty()) {
    json += ',';
    AppendMatch(json, "eq", "$success_action_status", in.success_action_status);
  }
  if (in.content_types.size() == 1) {
    json += ',';
    AppendMatch(json, "eq", "$Content-Type", in.content_types.front());
  } else if (in.content_types.size() > 1) {
    json += ",[\"in\",\"$content-type\",[";
    for (size_t i = 0; i < in.content_types.size(); ++i) {
      if (i > 0) json += ',';
      AppendString(json, in.content_types[i]);
    }
    json += "]]";
  }
  if (sts) {
    json += ',';
    AppendMember(json, "x-oss-security-token", cred.security_token);
  }
  if (!in.callback_b64.empty()) {
    json += ',';
    AppendMember(json, "callback", in.callback_b64);
  }
  if (in.forbid_overwrite) {
    json += ',';
    AppendMember(json, kForbidOverwrite, "true");
  }
  if (!in.object_acl.empty()) {
    json += ',';
    AppendMember(json, kObjectAcl, in.object_acl);
  }
  json += "]}";

  std::string policy_b64 = common::Base64Encode(form.policy_json);
  std::string signature =
      in.v4 ? PostSignatureV4(cred.access_key_secret, in.now, in.region, policy_b64)
            : PostSignatureV1(cred.access_key_secret, policy_b64);
  auto& fields = form.fields;
  fields.reserve(12);
  fields.emplace_back("key", in.key);
  fields.emplace_back("policy", std::move(policy_b64));
  if (in.v4) {
    fields.emplace_back("x-oss-signature-version", std::string(kV4Algorithm));
    fields.emplace_back("x-oss-credential", credential);
    fields.emplace_back("x-oss-date", date);
    fields.emplace_back("x-oss-signature", std::move(signature));
  } else {
    fields.emplace_back("OSSAccessKeyId", cred.access_key_id);
    fields.emplace_back("Signature", std::move(signature));
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
  if (in.forbid_overwrite) fields.emplace_back(kForbidOverwrite, "true");
  if (!in.object_acl.empty()) fields.emplace_back(kObjectAcl, in.object_acl);
  return form;
}

}  // namespace uploadbroker::policy
