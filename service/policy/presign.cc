#include "policy/presign.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "policy/time_format.h"
#include "policy/v4_signing.h"

namespace uploadbroker::policy {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// Go V2 requiredSignedParametersMap / Python V2 _subresource_key_set
// (Python's resourceGroup is left out: Go V2 and ali-oss do not sign it).
constexpr absl::string_view kV1SignedSubresources[] = {
    "acl",
    "append",
    "bucketInfo",
    "callback",
    "callback-var",
    "cloudboxes",
    "continuation-token",
    "delete",
    "location",
    "objectMeta",
    "partNumber",
    "position",
    "regionList",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "security-token",
    "sequential",
    "stat",
    "symlink",
    "tagging",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
};

bool IsDefaultSignedV4Header(absl::string_view lower_name) {
  return lower_name == "content-type" || lower_name == "content-md5" ||
         absl::StartsWith(lower_name, "x-oss-");
}

// ali-oss fixAdditionalHeaders: lowercase, de-duplicate, drop the headers
// that are signed anyway, sort.
std::vector<std::string> NormalizeAdditionalHeaders(
    const std::vector<std::string>& names) {
  std::set<std::string> out;
  for (const std::string& name : names) {
    std::string lower = absl::AsciiStrToLower(name);
    if (!IsDefaultSignedV4Header(lower)) out.insert(std::move(lower));
  }
  return {out.begin(), out.end()};
}

// "k1=v1&k2&..." with URI-encoded keys and values, in the given order.
std::string EncodeQuery(const Params& params) {
  std::vector<std::string> parts;
  parts.reserve(params.size());
  for (const auto& [name, value] : params) {
    std::string part = common::UriEncode(name, false);
    if (!value.empty())
      absl::StrAppend(&part, "=", common::UriEncode(value, false));
    parts.push_back(std::move(part));
  }
  return absl::StrJoin(parts, "&");
}

std::string BuildUrl(const PresignInput& in, const Params& query) {
  std::string path =
      in.path_style ? absl::StrCat(in.bucket, "/", in.key) : in.key;
  return absl::StrCat(in.scheme, "://", in.host, "/",
                      common::UriEncode(path, true), "?", EncodeQuery(query));
}

void CheckCommon(const PresignInput& in) {
  UB_CHECK(!in.method.empty());
  UB_CHECK(!in.host.empty());
  UB_CHECK(!in.bucket.empty());
  UB_CHECK(in.expires > absl::ZeroDuration());
}

}  // namespace

bool IsV1SignedSubresource(absl::string_view name) {
  return absl::StartsWith(name, "x-oss-") ||
         std::find(std::begin(kV1SignedSubresources),
                   std::end(kV1SignedSubresources),
                   name) != std::end(kV1SignedSubresources);
}

std::string V1CanonicalString(
    absl::string_view method, absl::string_view content_md5,
    absl::string_view content_type, absl::string_view expires_or_date,
    const std::map<std::string, std::string>& oss_headers,
    absl::string_view bucket, absl::string_view key,
    const std::map<std::string, std::string>& subresources) {
  std::string out = absl::StrCat(method, "\n", content_md5, "\n", content_type,
                                 "\n", expires_or_date, "\n");
  std::map<std::string, std::string> canonical_headers;
  for (const auto& [name, value] : oss_headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (absl::StartsWith(lower, "x-oss-")) {
      canonical_headers[std::move(lower)] =
          std::string(absl::StripAsciiWhitespace(value));
    }
  }
  for (const auto& [name, value] : canonical_headers) {
    absl::StrAppend(&out, name, ":", value, "\n");
  }
  absl::StrAppend(&out, "/", bucket, "/", key);
  // std::map iterates in byte-wise key order.
  char separator = '?';
  for (const auto& [name, value] : subresources) {
    if (!IsV1SignedSubresource(name)) continue;
    out.push_back(separator);
    separator = '&';
    absl::StrAppend(&out, name);
    if (!value.empty()) absl::StrAppend(&out, "=", value);
  }
  return out;
}

std::string V4CanonicalRequest(
    absl::string_view method, absl::string_view bucket, absl::string_view key,
    const std::vector<std::pair<std::string, std::string>>& query,
    const std::map<std::string, std::string>& headers,
    const std::vector<std::string>& additional_headers) {
  Params encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(common::UriEncode(name, false),
                         common::UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());  // Byte-wise, key then value.
  std::vector<std::string> query_parts;
  for (const auto& [name, value] : encoded) {
    query_parts.push_back(value.empty() ? name
                                        : absl::StrCat(name, "=", value));
  }

  const std::vector<std::string> additional =
      NormalizeAdditionalHeaders(additional_headers);
  std::map<std::string, std::string> signed_headers;
  for (const auto& [name, value] : headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (IsDefaultSignedV4Header(lower) ||
        std::binary_search(additional.begin(), additional.end(), lower)) {
      signed_headers[std::move(lower)] =
          std::string(absl::StripAsciiWhitespace(value));
    }
  }
  std::string canonical_headers;
  for (const auto& [name, value] : signed_headers) {
    absl::StrAppend(&canonical_headers, name, ":", value, "\n");
  }

  return absl::StrCat(
      method, "\n",
      common::UriEncode(absl::StrCat("/", bucket, "/", key), true), "\n",
      absl::StrJoin(query_parts, "&"), "\n", canonical_headers, "\n",
      absl::StrJoin(additional, ";"), "\n", "UNSIGNED-PAYLOAD");
}

std::string V4StringToSign(absl::Time date, absl::string_view region,
                           absl::string_view canonical_request) {
  return absl::StrCat(kV4Algorithm, "\n", V4DateTime(date), "\n",
                      V4Scope(date, region), "\n",
                      common::HexEncode(common::Sha256(canonical_request)));
}

PresignedRequest PresignV1(const PresignInput& in, const Credential& cred) {
  CheckCommon(in);
  const bool sts = !cred.security_token.empty();
  const std::string expires =
      absl::StrCat(absl::ToUnixSeconds(in.now + in.expires));
  std::string content_md5;
  std::string content_type;
  std::map<std::string, std::string> oss_headers;
  for (const auto& [name, value] : in.headers) {
    std::string lower = absl::AsciiStrToLower(name);
    if (lower == "content-md5") {
      content_md5 = value;
    } else if (lower == "content-type") {
      content_type = value;
    } else if (absl::StartsWith(lower, "x-oss-")) {
      oss_headers[std::move(lower)] = value;
    }
  }
  std::map<std::string, std::string> subresources(in.query.begin(),
                                                  in.query.end());
  if (sts) subresources["security-token"] = cred.security_token;

  PresignedRequest out;
  out.string_to_sign =
      V1CanonicalString(in.method, content_md5, content_type, expires,
                        oss_headers, in.bucket, in.key, subresources);
  std::string signature = common::Base64Encode(
      common::HmacSha1(cred.access_key_secret, out.string_to_sign));
  Params query = {{"OSSAccessKeyId", cred.access_key_id},
                  {"Expires", expires},
                  {"Signature", std::move(signature)}};
  if (sts) query.emplace_back("security-token", cred.security_token);
  query.insert(query.end(), in.query.begin(), in.query.end());
  out.url = BuildUrl(in, query);
  out.headers = in.headers;
  return out;
}

PresignedRequest PresignV4(const PresignInput& in, const Credential& cred) {
  CheckCommon(in);
  UB_CHECK(in.expires >= absl::Seconds(1) && in.expires <= absl::Hours(24 * 7));
  UB_CHECK(!in.region.empty());
  const std::vector<std::string> additional =
      NormalizeAdditionalHeaders(in.additional_headers);
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : in.headers) {
    headers[absl::AsciiStrToLower(name)] = value;
  }
  for (const std::string& name : additional) UB_CHECK(headers.count(name) == 1);

  Params query = {
      {"x-oss-signature-version", std::string(kV4Algorithm)},
      {"x-oss-credential", V4Credential(cred.access_key_id, in.now, in.region)},
      {"x-oss-date", V4DateTime(in.now)},
      {"x-oss-expires", absl::StrCat(absl::ToInt64Seconds(in.expires))}};
  if (!additional.empty()) {
    query.emplace_back("x-oss-additional-headers",
                       absl::StrJoin(additional, ";"));
  }
  if (!cred.security_token.empty()) {
    query.emplace_back("x-oss-security-token", cred.security_token);
  }
  query.insert(query.end(), in.query.begin(), in.query.end());

  PresignedRequest out;
  out.string_to_sign = V4CanonicalRequest(in.method, in.bucket, in.key, query,
                                          headers, additional);
  query.emplace_back(
      "x-oss-signature",
      V4Signature(cred.access_key_secret, in.now, in.region,
                  V4StringToSign(in.now, in.region, out.string_to_sign)));
  out.url = BuildUrl(in, query);
  out.headers = in.headers;
  return out;
}

}  // namespace uploadbroker::policy
