#include "ossapi/object_probe.h"

#include <curl/curl.h>

#include <functional>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "policy/presign.h"

namespace uploadbroker::ossapi {
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

OssObjectProbe::~OssObjectProbe() {
  absl::MutexLock lock(&mu_);
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

int64_t OssObjectProbe::connections_opened() const {
  absl::MutexLock lock(&mu_);
  return connects_;
}

void* OssObjectProbe::TakeHandle() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void OssObjectProbe::GiveBack(void* handle) {
  CURL* curl = static_cast<CURL*>(handle);
  long connects = 0;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
  curl_easy_reset(curl);  // keeps the handle's live connections and caches
  {
    absl::MutexLock lock(&mu_);
    connects_ += connects;
    if (static_cast<int>(idle_.size()) < max_idle_) {
      idle_.push_back(curl);
      return;
    }
  }
  curl_easy_cleanup(curl);
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

  CURL* curl = static_cast<CURL*>(TakeHandle());
  if (curl == nullptr) return absl::UnavailableError("HeadObject: curl_easy_init failed");
  std::unique_ptr<CURL, std::function<void(CURL*)>> handle(curl, [this](CURL* c) { GiveBack(c); });
  std::map<std::string, std::string> headers;
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(timeout_));
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  // Send the signed path as it is: a key such as "a/./b" or "a/../b" is a
  // legal OSS key, and letting curl collapse the dot segments would HEAD
  // (with a signature for the real key) another path.
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);  // HEAD
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
  const std::string where = absl::StrCat("HeadObject ", bucket.name, "/", key);
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(where, ": ", curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status == 404) return absl::NotFoundError(absl::StrCat(where, ": no such object"));
  if (status != 200) {
    return absl::UnavailableError(absl::StrCat(where, ": HTTP ", status, " (request id ",
                                               headers["x-oss-request-id"], ")"));
  }
  return ToFacts(headers);
}

}  // namespace uploadbroker::ossapi
