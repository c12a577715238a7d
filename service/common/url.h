// Absolute http(s) URLs taken apart by libcurl's URL API (curl_url), so the
// project parses URLs one way, the way the HTTP client it uses does. Pure
// function, thread-safe.
#ifndef UPLOADBROKER_COMMON_URL_H_
#define UPLOADBROKER_COMMON_URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::common {

struct Url {
  std::string scheme;  // lowercase, e.g. "https"
  std::string host;    // as written (no brackets stripped from IPv6)
  std::string port;    // as written, or the scheme's default ("443")
  std::string path;    // raw, still percent-encoded; "/" when the URL has none
  std::string query;   // raw, without '?'; empty when absent
};

// What happens to "." and ".." segments of the path: kKeep leaves "/a/../b"
// as written (the configured URL a server compares requests against);
// kResolve gives "/b", the path libcurl sends when asked to fetch the URL.
enum class DotSegments { kKeep, kResolve };

// InvalidArgument, quoting libcurl's reason, when `url` is not an absolute
// URL libcurl accepts.
absl::StatusOr<Url> ParseUrl(absl::string_view url, DotSegments dot_segments);

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_URL_H_
