#include "common/url.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace uploadbroker::common {
namespace {

// One part of `u`; empty when absent.
std::string Part(CURLU* u, CURLUPart part, unsigned int flags = 0) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, flags) != CURLUE_OK || value == nullptr)
    return "";
  std::string out(value);
  curl_free(value);
  return out;
}

}  // namespace

absl::StatusOr<Url> ParseUrl(absl::string_view url, DotSegments dot_segments) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(),
                                                        &curl_url_cleanup);
  if (u == nullptr)
    return absl::ResourceExhaustedError("curl_url: out of memory");
  const std::string text(url);
  const unsigned int flags =
      dot_segments == DotSegments::kKeep ? CURLU_PATH_AS_IS : 0;
  CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, text.c_str(), flags);
  if (rc != CURLUE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid URL: '", text, "': ", curl_url_strerror(rc)));
  }
  Url out;
  out.scheme = Part(u.get(), CURLUPART_SCHEME);
  out.host = Part(u.get(), CURLUPART_HOST);
  out.port = Part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  out.path = Part(u.get(), CURLUPART_PATH);
  if (out.path.empty()) out.path = "/";
  out.query = Part(u.get(), CURLUPART_QUERY);
  return out;
}

}  // namespace uploadbroker::common
