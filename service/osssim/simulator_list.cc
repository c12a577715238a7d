// ListObjectsV2 (GetBucketV2) and GetObjectACL for Simulator: the read-only
// bucket and object views the broker's reconciler and tests ask for.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/encoding.h"
#include "osssim/simulator.h"

namespace uploadbroker::osssim {
namespace {

http::Response Xml(std::string body, const std::string& request_id) {
  http::Response r;
  r.content_type = "application/xml";
  r.body = absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", body);
  r.headers.emplace_back("x-oss-request-id", request_id);
  return r;
}

}  // namespace

http::Response Simulator::ListObjects(const http::Request& req, const std::string& bucket,
                                      const QueryParams& query, const std::string& request_id) {
  if (auto e = CheckRequestSignature(req, bucket, "", query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  // OSS's rules: max-keys 1 to 1,000 (default 100); encoding-type only
  // "url", which URL-encodes Key, Prefix and StartAfter in the answer.
  size_t max_keys = 100;
  if (std::optional<std::string> text = QueryParam(query, "max-keys")) {
    if (!absl::SimpleAtoi(*text, &max_keys) || max_keys < 1 || max_keys > 1000) {
      return ErrorResponse(InvalidArgument("max-keys must be an integer from 1 to 1000."),
                           request_id);
    }
  }
  const std::string encoding = QueryParam(query, "encoding-type").value_or("");
  if (!encoding.empty() && encoding != "url") {
    return ErrorResponse(InvalidArgument("The encoding-type you specified is not valid."),
                         request_id);
  }
  auto out = [&encoding](absl::string_view text) {
    return XmlEscape(encoding == "url" ? common::UriEncode(text, false) : std::string(text));
  };
  const std::string prefix = QueryParam(query, "prefix").value_or("");
  const std::string start_after = QueryParam(query, "start-after").value_or("");
  // The continuation token is opaque to clients: here the hex of the last
  // key listed. Sent with start-after, the listing resumes after the later.
  std::optional<std::string> token = QueryParam(query, "continuation-token");
  std::string after = start_after;
  if (token) {
    const bool hex = !token->empty() && token->size() % 2 == 0 &&
                     std::all_of(token->begin(), token->end(),
                                 [](char c) { return absl::ascii_isxdigit(c); });
    if (!hex) {
      return ErrorResponse(InvalidArgument("The continuation token provided is incorrect."),
                           request_id);
    }
    std::string decoded = absl::HexStringToBytes(*token);
    after = std::max(after, decoded);
  }
  ObjectStore::Listing listing = store_.List(bucket, prefix, after, max_keys);
  std::string body = absl::StrCat("<ListBucketResult><Name>", XmlEscape(bucket), "</Name><Prefix>",
                                  out(prefix), "</Prefix>");
  if (!start_after.empty()) absl::StrAppend(&body, "<StartAfter>", out(start_after), "</StartAfter>");
  if (token) absl::StrAppend(&body, "<ContinuationToken>", *token, "</ContinuationToken>");
  absl::StrAppend(&body, "<MaxKeys>", max_keys, "</MaxKeys>");
  if (!encoding.empty()) absl::StrAppend(&body, "<EncodingType>url</EncodingType>");
  absl::StrAppend(&body, "<IsTruncated>", listing.truncated ? "true" : "false", "</IsTruncated>");
  if (listing.truncated) {
    absl::StrAppend(&body, "<NextContinuationToken>",
                    absl::BytesToHexString(listing.objects.back().first),
                    "</NextContinuationToken>");
  }
  for (const auto& [key, info] : listing.objects) {
    absl::StrAppend(&body, "<Contents><Key>", out(key), "</Key><LastModified>",
                    absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", info.last_modified,
                                     absl::UTCTimeZone()),
                    "</LastModified><ETag>", XmlEscape(info.etag), "</ETag><Type>",
                    absl::StrContains(info.etag, "-") ? "Multipart" : "Normal", "</Type><Size>",
                    info.size, "</Size><StorageClass>Standard</StorageClass></Contents>");
  }
  absl::StrAppend(&body, "<KeyCount>", listing.objects.size(), "</KeyCount></ListBucketResult>");
  return Xml(std::move(body), request_id);
}

http::Response Simulator::GetObjectAcl(const http::Request& req, const std::string& bucket,
                                       const std::string& key, const std::string& request_id) {
  QueryParams query = ParseQuery(req.query_raw);
  if (auto e = CheckRequestSignature(req, bucket, key, query, options_.credentials, absl::Now())) {
    return ErrorResponse(*e, request_id);
  }
  std::optional<ObjectInfo> info = store_.Head(bucket, key);
  if (!info) return ErrorResponse({404, "NoSuchKey", "The specified key does not exist."}, request_id);
  return Xml(absl::StrCat("<AccessControlPolicy><Owner><ID>0</ID><DisplayName>0</DisplayName>"
                          "</Owner><AccessControlList><Grant>",
                          XmlEscape(info->acl), "</Grant></AccessControlList></AccessControlPolicy>"),
             request_id);
}

}  // namespace uploadbroker::osssim
