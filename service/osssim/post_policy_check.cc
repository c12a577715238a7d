#include "osssim/post_policy_check.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "nlohmann/json.hpp"
#include "policy/post_policy.h"
#include "policy/v4_signing.h"

namespace uploadbroker::osssim {
namespace {

using Json = nlohmann::json;

std::string Field(const FormFields& fields, absl::string_view name) {
  auto it = fields.find(absl::AsciiStrToLower(name));
  return it == fields.end() ? "" : it->second;
}

bool Has(const FormFields& fields, absl::string_view name) {
  return fields.count(absl::AsciiStrToLower(name)) > 0;
}

OssError SignatureMismatch() {
  return {403, "SignatureDoesNotMatch",
          "The request signature we calculated does not match the signature you provided. "
          "Check your key and signing method."};
}

OssError ConditionFailed(const Json& condition) {
  return AccessDenied(
      absl::StrCat("Invalid according to Policy: Policy Condition failed: ", condition.dump()));
}

// Value of "$name" (or "name" in the object form) for condition checks:
// `bucket` is the URL's bucket, anything else a form field ("" if absent).
std::string ConditionValue(const FormFields& fields, absl::string_view bucket,
                           absl::string_view name) {
  if (absl::StartsWith(name, "$")) name.remove_prefix(1);
  if (absl::EqualsIgnoreCase(name, "bucket")) return std::string(bucket);
  return Field(fields, name);
}

std::optional<OssError> CheckArrayCondition(const Json& c, const FormFields& fields,
                                            absl::string_view bucket, int64_t size) {
  if (c.size() != 3 || !c[0].is_string()) return InvalidPolicy("Invalid Policy: Invalid condition.");
  std::string op = absl::AsciiStrToLower(c[0].get<std::string>());
  if (op == "content-length-range") {
    if (!c[1].is_number_integer() || !c[2].is_number_integer() ||
        c[2].get<int64_t>() < c[1].get<int64_t>()) {
      return InvalidPolicy("Invalid Policy: Invalid content-length-range.");
    }
    if (size > c[2].get<int64_t>()) {
      return OssError{400, "EntityTooLarge",
                      "Your proposed upload exceeds the maximum allowed size."};
    }
    if (size < c[1].get<int64_t>()) {
      return OssError{400, "EntityTooSmall",
                      "Your proposed upload is smaller than the minimum allowed size."};
    }
    return std::nullopt;
  }
  if (!c[1].is_string() || !absl::StartsWith(c[1].get<std::string>(), "$")) {
    return InvalidPolicy("Invalid Policy: Invalid condition field.");
  }
  std::string value = ConditionValue(fields, bucket, c[1].get<std::string>());
  if (op == "eq" || op == "starts-with") {
    if (!c[2].is_string()) return InvalidPolicy("Invalid Policy: Invalid condition value.");
    const std::string& want = c[2].get_ref<const std::string&>();
    bool ok = op == "eq" ? value == want : absl::StartsWith(value, want);
    return ok ? std::nullopt : std::optional<OssError>(ConditionFailed(c));
  }
  if (op == "in" || op == "not-in") {
    if (!c[2].is_array()) return InvalidPolicy("Invalid Policy: Invalid condition value list.");
    bool found = false;
    for (const Json& v : c[2]) {
      if (!v.is_string()) return InvalidPolicy("Invalid Policy: Invalid condition value list.");
      found = found || v.get_ref<const std::string&>() == value;
    }
    return found == (op == "in") ? std::nullopt : std::optional<OssError>(ConditionFailed(c));
  }
  return InvalidPolicy(absl::StrCat("Invalid Policy: Unknown condition operator: ", op));
}

}  // namespace

std::optional<absl::Time> ParseV4DateTime(absl::string_view text) {
  absl::Time t;
  std::string err;
  if (text.size() != 16 || !absl::ParseTime("%E4Y%m%dT%H%M%SZ", text, &t, &err)) {
    return std::nullopt;
  }
  return t;
}

std::optional<V4CredentialParts> ParseV4Credential(absl::string_view credential) {
  std::vector<std::string> parts = absl::StrSplit(credential, '/');
  if (parts.size() != 5 || parts[3] != "oss" || parts[4] != "aliyun_v4_request" ||
      parts[0].empty() || parts[1].size() != 8 || parts[2].empty()) {
    return std::nullopt;
  }
  return V4CredentialParts{parts[0], parts[1], parts[2]};
}

std::optional<OssError> CheckPostSignature(const FormFields& fields, const SimCredentials& creds,
                                           absl::Time now) {
  const std::string policy_b64 = Field(fields, "policy");
  if (Has(fields, "x-oss-signature-version")) {
    if (Field(fields, "x-oss-signature-version") != policy::kV4Algorithm) {
      return InvalidArgument("Unsupported x-oss-signature-version.");
    }
    for (absl::string_view f : {"x-oss-credential", "x-oss-date", "x-oss-signature", "policy"}) {
      if (!Has(fields, f)) return InvalidArgument(absl::StrCat("Missing form field ", f, "."));
    }
    std::optional<V4CredentialParts> cred = ParseV4Credential(Field(fields, "x-oss-credential"));
    if (!cred) return InvalidArgument("Invalid x-oss-credential.");
    std::optional<absl::Time> date = ParseV4DateTime(Field(fields, "x-oss-date"));
    if (!date) return InvalidArgument("Invalid x-oss-date.");
    if (Field(fields, "x-oss-date").substr(0, 8) != cred->date) {
      return InvalidArgument("x-oss-date does not match the date in x-oss-credential.");
    }
    if (*date > now + absl::Minutes(15)) {
      return AccessDenied("x-oss-date is in the future.");
    }
    if (now - *date > absl::Hours(24 * 7)) {
      return AccessDenied("Request has expired: x-oss-date is more than 7 days old.");
    }
    if (cred->access_key_id != creds.access_key_id) {
      return OssError{403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records."};
    }
    std::string want =
        policy::PostSignatureV4(creds.access_key_secret, *date, cred->region, policy_b64);
    if (!common::ConstantTimeEquals(want, Field(fields, "x-oss-signature"))) {
      return SignatureMismatch();
    }
    return std::nullopt;
  }
  int present = Has(fields, "OSSAccessKeyId") + Has(fields, "policy") + Has(fields, "Signature");
  if (present == 0) return AccessDenied("You have no right to access this object because of bucket acl.");
  if (present != 3) {
    return InvalidArgument("OSSAccessKeyId, policy and Signature must all be present.");
  }
  if (Field(fields, "OSSAccessKeyId") != creds.access_key_id) {
    return OssError{403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records."};
  }
  std::string want = policy::PostSignatureV1(creds.access_key_secret, policy_b64);
  if (!common::ConstantTimeEquals(want, Field(fields, "Signature"))) return SignatureMismatch();
  return std::nullopt;
}

std::optional<OssError> CheckPostPolicy(const FormFields& fields, absl::string_view bucket,
                                        int64_t file_size, absl::Time now) {
  absl::StatusOr<std::string> text = common::Base64Decode(Field(fields, "policy"));
  if (!text.ok()) return InvalidPolicy("Invalid Policy: Invalid Base64 Encoding.");
  Json doc = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return InvalidPolicy("Invalid Policy: Invalid JSON.");
  for (const auto& [name, value] : doc.items()) {
    if (name != "expiration" && name != "conditions") {
      return InvalidPolicy(absl::StrCat("Invalid Policy: Unexpected member ", name, "."));
    }
  }
  if (!doc.contains("expiration") || !doc["expiration"].is_string()) {
    return InvalidPolicy("Invalid Policy: Policy has no expiration.");
  }
  if (!doc.contains("conditions") || !doc["conditions"].is_array()) {
    return InvalidPolicy("Invalid Policy: Policy has no conditions.");
  }
  absl::Time expiration;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", doc["expiration"].get<std::string>(), &expiration,
                       &err)) {
    return InvalidPolicy("Invalid Policy: Invalid expiration.");
  }
  if (now >= expiration) return AccessDenied("Invalid according to Policy: Policy expired.");
  for (const Json& c : doc["conditions"]) {
    if (c.is_object()) {
      for (const auto& [name, want] : c.items()) {
        if (!want.is_string()) return InvalidPolicy("Invalid Policy: Invalid condition value.");
        if (ConditionValue(fields, bucket, name) != want.get_ref<const std::string&>()) {
          return ConditionFailed(Json::array({"eq", "$" + name, want}));
        }
      }
    } else if (c.is_array()) {
      if (auto e = CheckArrayCondition(c, fields, bucket, file_size)) return e;
    } else {
      return InvalidPolicy("Invalid Policy: A condition must be an object or an array.");
    }
  }
  return std::nullopt;
}

}  // namespace uploadbroker::osssim
