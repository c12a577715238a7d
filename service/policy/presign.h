// Presigned object URLs, V1 (HMAC-SHA1, absolute Expires) and V4
// (OSS4-HMAC-SHA256, x-oss-expires relative to x-oss-date); see
// oss-protocol.md §3 and §7.
//
// Pure functions, thread-safe. Inputs are trusted (validated by the caller);
// violated preconditions abort via UB_CHECK. The lower-level canonicalisation
// functions are exposed so the OSS simulator verifies incoming requests with
// the same code that signs them.
#ifndef UPLOADBROKER_POLICY_PRESIGN_H_
#define UPLOADBROKER_POLICY_PRESIGN_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "policy/credential.h"

namespace uploadbroker::policy {

// The header (PUT) or form field (PostObject) that makes OSS refuse to
// replace an existing object (409 FileAlreadyExists) when it is "true".
inline constexpr char kForbidOverwrite[] = "x-oss-forbid-overwrite";

// The header (PUT, InitiateMultipartUpload) or form field (PostObject) that
// sets the object's ACL: private, public-read, public-read-write or default
// (the bucket's). The broker pins kPrivateAcl, so an uploader cannot publish
// what it uploads.
inline constexpr char kObjectAcl[] = "x-oss-object-acl";
inline constexpr char kPrivateAcl[] = "private";

struct PresignInput {
  std::string method = "PUT";
  std::string scheme = "https";
  // Host the client connects to, e.g.
  // examplebucket.oss-cn-hangzhou.aliyuncs.com or 127.0.0.1:9000.
  std::string host;
  // URL path is /<bucket>/<key> instead of /<key> (simulator). The signed
  // resource is /<bucket>/<key> either way.
  bool path_style = false;
  std::string bucket;  // Required.
  // Raw UTF-8 object name; empty for a bucket-level request (ListObjectsV2),
  // whose resource is /<bucket>/.
  std::string key;
  // Headers the uploader must send, exact case (Content-Type, x-oss-callback,
  // Content-Length...). Content-Type, Content-MD5 and x-oss-* are signed.
  std::vector<std::pair<std::string, std::string>> headers;
  // Extra query parameters (e.g. callback, callback-var), raw values.
  std::vector<std::pair<std::string, std::string>> query;
  // V4 only: further headers to sign, e.g. {"content-length"}; each must be
  // in `headers`.
  std::vector<std::string> additional_headers;
  absl::Time now;
  // Validity, > 0; V4 also requires <= 7 days.
  absl::Duration expires;
  std::string region;  // V4 only; standard form, e.g. cn-hangzhou.
};

struct PresignedRequest {
  std::string url;
  // Headers the uploader must send byte-for-byte (a copy of the input's).
  std::vector<std::pair<std::string, std::string>> headers;
  // V1 canonical string, or V4 canonical request; for debugging and tests.
  std::string string_to_sign;
};

// V1 URL query: OSSAccessKeyId, Expires (= unix seconds of now + expires),
// Signature, security-token (STS), then `query`; values URI-encoded.
PresignedRequest PresignV1(const PresignInput& in, const Credential& cred);

// V4 URL query: x-oss-signature-version, x-oss-credential, x-oss-date,
// x-oss-expires (seconds), x-oss-additional-headers (if any),
// x-oss-security-token (STS), `query`, then x-oss-signature. Payload unsigned.
PresignedRequest PresignV4(const PresignInput& in, const Credential& cred);

// V1 string to sign:
//   method \n content_md5 \n content_type \n expires_or_date \n
//   [x-oss-name:value \n]... /bucket/key[?sub[=value]&...]
// `oss_headers`: request headers by name, any case; only x-oss-* are used
// (lowercased, values trimmed, sorted). `key` is the raw, unencoded name.
// `subresources`: query parameters with decoded values, all of them; only the
// signed sub-resources (oss-protocol.md §3.1, plus any x-oss-* key as Go V2
// does) are used, sorted byte-wise, written "k" when the value is empty.
std::string V1CanonicalString(
    absl::string_view method, absl::string_view content_md5,
    absl::string_view content_type, absl::string_view expires_or_date,
    const std::map<std::string, std::string>& oss_headers,
    absl::string_view bucket, absl::string_view key,
    const std::map<std::string, std::string>& subresources);

// Whether a V1 query parameter is a signed sub-resource.
bool IsV1SignedSubresource(absl::string_view name);

// V4 canonical request:
//   method \n URI-encode(/bucket/key, keeping '/') \n canonical query \n
//   canonical headers \n additional headers \n UNSIGNED-PAYLOAD
// `query`: every query parameter except x-oss-signature, raw values; keys and
// values are URI-encoded and sorted byte-wise by encoded key.
// `headers`: request headers by name (lowercase or not); content-type,
// content-md5, x-oss-* and the additional headers present are signed, values
// trimmed. `additional_headers` is normalised as ali-oss does: lowercased,
// de-duplicated, content-type/content-md5/x-oss-* dropped, sorted.
std::string V4CanonicalRequest(
    absl::string_view method, absl::string_view bucket, absl::string_view key,
    const std::vector<std::pair<std::string, std::string>>& query,
    const std::map<std::string, std::string>& headers,
    const std::vector<std::string>& additional_headers);

// "OSS4-HMAC-SHA256\n<x-oss-date>\n<scope>\n<hex sha256(canonical_request)>".
std::string V4StringToSign(absl::Time date, absl::string_view region,
                           absl::string_view canonical_request);

}  // namespace uploadbroker::policy

#endif  // UPLOADBROKER_POLICY_PRESIGN_H_
