#include "reconcile/object_probe.h"

#include <curl/curl.h>

#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "policy/presign.h"

namespace uploadbroker::reconcile {
namespace {

// Response headers by lowercased name (the last value wins).
size_t CollectHeader(char* data, size_t size, size_t n, void* out) {
  absl::string_view line(data, size * n);
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    (*static_cast<std::map<std::string, std::string>*>(out))[absl::AsciiStrToLower(
        absl::StripAsciiWhitespace(line.substr(0, colon)))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

absl::StatusOr<ObjectFacts> ToFacts(std::map<std::string, std::string>& h) {
  ObjectFacts facts;
  if (!absl::SimpleAtoi(h["content-length"], &facts.size) || facts.size < 0) {
    return absl::UnavailableError(
        absl::StrCat("HeadObject: Content-Length '", h["content-length"], "' is not a size"));
  }
  facts.etag = std::string(absl::StripSuffix(absl::StripPrefix(h["etag"], "\""), "\""));
  facts.content_type = h["content-type"];
  facts.crc64 = h["x-oss-hash-crc64ecma"];
  facts.content_md5 = h["content-md5"];
  facts.request_id = h["x-oss-request-id"];
  if (!h["last-modified"].empty()) {
    UB_ASSIGN_OR_RETURN(facts.last_modified, ParseHttpDate(h["last-modified"]));
  }
  return facts;
}

}  // namespace

absl::StatusOr<absl::Time> ParseHttpDate(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", text, absl::UTCTimeZone(), &t, &err)) {
    return absl::UnavailableError(absl::StrCat("HeadObject: Last-Modified '", text, "': ", err));
  }
  return t;
}

absl::StatusOr<ObjectFacts> OssObjectProbe::Head(const config::Bucket& bucket,
                                                 const std::string& key) {
  UB_ASSIGN_OR_RETURN(policy::Credential cred, creds_.Get());
  policy::PresignInput in;
  in.method = "HEAD";
  in.scheme = bucket.scheme;
  in.host = bucket.api_host;
  in.path_style = bucket.path_style;
  in.bucket = bucket.name;
  in.key = key;
  in.now = clock_.Now();
  in.expires = absl::Minutes(1);
  in.region = bucket.region;
  const std::string url = policy::PresignV4(in, cred).url;

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  std::map<std::string, std::string> headers;
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(timeout_));
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);  // HEAD
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &headers);
  const std::string where = absl::StrCat("HeadObject ", bucket.name, "/", key);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(where, ": ", curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 404) return absl::NotFoundError(absl::StrCat(where, ": no such object"));
  if (status != 200) {
    return absl::UnavailableError(absl::StrCat(where, ": HTTP ", status, " (request id ",
                                               headers["x-oss-request-id"], ")"));
  }
  return ToFacts(headers);
}

}  // namespace uploadbroker::reconcile
