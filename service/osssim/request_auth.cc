#include "osssim/request_auth.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "policy/presign.h"
#include "policy/v4_signing.h"

namespace uploadbroker::osssim {
namespace {

std::string Param(const QueryParams& q, absl::string_view name) {
  for (const auto& [k, v] : q) {
    if (k == name) return v;  // the first one counts [URL-V1]
  }
  return "";
}
bool HasParam(const QueryParams& q, absl::string_view name) {
  for (const auto& kv : q) {
    if (kv.first == name) return true;
  }
  return false;
}

OssError Mismatch(std::string string_to_sign) {
  return {403, "SignatureDoesNotMatch",
          "The request signature we calculated does not match the signature you provided. "
          "Check your key and signing method.",
          std::move(string_to_sign)};
}
OssError BadKeyId() {
  return {403, "InvalidAccessKeyId",
          "The OSS Access Key Id you provided does not exist in our records."};
}

std::map<std::string, std::string> OssHeaders(const http::Request& req) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : req.headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (absl::StartsWith(lower, "x-oss-")) out.emplace(lower, value);
  }
  return out;
}

std::map<std::string, std::string> AllHeaders(const http::Request& req) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : req.headers) out.emplace(absl::AsciiStrToLower(name), value);
  return out;
}

std::map<std::string, std::string> Subresources(const QueryParams& q) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : q) out.emplace(k, v);
  return out;
}

std::optional<OssError> CheckV1(const http::Request& req, const std::string& bucket,
                                const std::string& key, const QueryParams& q,
                                const SimCredentials& creds, const std::string& ak,
                                const std::string& date_or_expires, const std::string& sig) {
  if (ak != creds.access_key_id) return BadKeyId();
  std::string text = policy::V1CanonicalString(
      req.method, req.Header("Content-MD5"), req.Header("Content-Type"), date_or_expires,
      OssHeaders(req), bucket, key, Subresources(q));
  std::string want = common::Base64Encode(common::HmacSha1(creds.access_key_secret, text));
  if (!common::ConstantTimeEquals(want, sig)) return Mismatch(text);
  return std::nullopt;
}

std::optional<OssError> CheckV4(const http::Request& req, const std::string& bucket,
                                const std::string& key, const QueryParams& q,
                                const SimCredentials& creds, const std::string& credential,
                                const std::string& date_text, const std::string& additional,
                                const std::string& sig, absl::Time now) {
  std::optional<V4CredentialParts> cred = ParseV4Credential(credential);
  if (!cred) return InvalidArgument("Invalid x-oss-credential.");
  std::optional<absl::Time> date = ParseV4DateTime(date_text);
  if (!date || date_text.substr(0, 8) != cred->date) return InvalidArgument("Invalid x-oss-date.");
  if (cred->access_key_id != creds.access_key_id) return BadKeyId();
  if (*date > now + absl::Minutes(15)) return AccessDenied("x-oss-date is in the future.");
  std::vector<std::string> extra;
  for (absl::string_view h : absl::StrSplit(additional, ';', absl::SkipEmpty())) {
    extra.emplace_back(h);
  }
  QueryParams signed_query;
  for (const auto& kv : q) {
    if (kv.first != "x-oss-signature") signed_query.push_back(kv);
  }
  std::string canonical = policy::V4CanonicalRequest(req.method, bucket, key, signed_query,
                                                     AllHeaders(req), extra);
  std::string to_sign = policy::V4StringToSign(*date, cred->region, canonical);
  std::string want = policy::V4Signature(creds.access_key_secret, *date, cred->region, to_sign);
  if (!common::ConstantTimeEquals(want, sig)) return Mismatch(absl::StrCat(to_sign, "\n\n", canonical));
  return std::nullopt;
}

}  // namespace

QueryParams ParseQuery(absl::string_view raw) {
  QueryParams out;
  for (absl::string_view item : absl::StrSplit(raw, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    absl::StatusOr<std::string> k = common::PercentDecode(kv.first, false);
    absl::StatusOr<std::string> v = common::PercentDecode(kv.second, false);
    out.emplace_back(k.ok() ? *k : std::string(kv.first), v.ok() ? *v : std::string(kv.second));
  }
  return out;
}

std::optional<std::string> QueryParam(const QueryParams& query, absl::string_view name) {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return std::nullopt;
}

std::optional<OssError> CheckRequestSignature(const http::Request& req, const std::string& bucket,
                                              const std::string& key, const QueryParams& q,
                                              const SimCredentials& creds, absl::Time now) {
  std::string authorization = req.Header("Authorization");
  bool v4_query = HasParam(q, "x-oss-signature");
  bool v1_query = HasParam(q, "Signature") || HasParam(q, "OSSAccessKeyId");
  if (!authorization.empty() && (v4_query || v1_query)) {
    return InvalidArgument("Authorization header and query signature cannot be used together.");
  }
  if (v4_query) {
    if (Param(q, "x-oss-signature-version") != policy::kV4Algorithm) {
      return InvalidArgument("Unsupported x-oss-signature-version.");
    }
    int64_t expires = 0;
    std::optional<absl::Time> date = ParseV4DateTime(Param(q, "x-oss-date"));
    if (!date || !absl::SimpleAtoi(Param(q, "x-oss-expires"), &expires) || expires <= 0 ||
        expires > 604800) {
      return InvalidArgument("Invalid x-oss-date or x-oss-expires.");
    }
    if (now > *date + absl::Seconds(expires)) return AccessDenied("Request has expired.");
    return CheckV4(req, bucket, key, q, creds, Param(q, "x-oss-credential"),
                   Param(q, "x-oss-date"), Param(q, "x-oss-additional-headers"),
                   Param(q, "x-oss-signature"), now);
  }
  if (v1_query) {
    int64_t expires = 0;
    if (!absl::SimpleAtoi(Param(q, "Expires"), &expires)) {
      return AccessDenied("Invalid or missing Expires.");
    }
    if (now > absl::FromUnixSeconds(expires)) return AccessDenied("Request has expired.");
    return CheckV1(req, bucket, key, q, creds, Param(q, "OSSAccessKeyId"), Param(q, "Expires"),
                   Param(q, "Signature"));
  }
  if (absl::StartsWith(authorization, "OSS ")) {
    std::pair<std::string, std::string> ak_sig =
        absl::StrSplit(authorization.substr(4), absl::MaxSplits(':', 1));
    // x-oss-date stands in for Date when present (the SDKs send only it).
    std::string date = req.Header("x-oss-date");
    if (date.empty()) date = req.Header("Date");
    return CheckV1(req, bucket, key, q, creds, ak_sig.first, date, ak_sig.second);
  }
  if (absl::StartsWith(authorization, "OSS4-HMAC-SHA256 ")) {
    std::map<std::string, std::string> parts;
    for (absl::string_view item : absl::StrSplit(authorization.substr(17), ',')) {
      std::pair<std::string, std::string> kv =
          absl::StrSplit(absl::StripAsciiWhitespace(item), absl::MaxSplits('=', 1));
      parts[kv.first] = kv.second;
    }
    std::string sha = req.Header("x-oss-content-sha256");
    if (!sha.empty() && sha != "UNSIGNED-PAYLOAD") {
      return InvalidArgument("Only UNSIGNED-PAYLOAD is supported by the simulator.");
    }
    return CheckV4(req, bucket, key, q, creds, parts["Credential"], req.Header("x-oss-date"),
                   parts["AdditionalHeaders"], parts["Signature"], now);
  }
  if (!authorization.empty()) return InvalidArgument("Unsupported Authorization header.");
  return AccessDenied("You have no right to access this object because of bucket acl.");
}

}  // namespace uploadbroker::osssim
