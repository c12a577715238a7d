#include "client/api_key_file.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace uploadbroker::client {

absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {  // pipes (<(...)) are fine
    return absl::InvalidArgumentError(absl::StrCat("--api-key-file: '", path, "' is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--api-key-file: cannot read '", path, "'"));
  std::string content(kMaxApiKeyFileBytes + 1, '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat("--api-key-file: cannot read '", path, "'"));
  }
  content.resize(static_cast<size_t>(in.gcount()));
  if (content.size() > kMaxApiKeyFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--api-key-file: '", path, "' is larger than ",
                                                   kMaxApiKeyFileBytes,
                                                   " bytes; it does not hold an API key"));
  }
  std::string key(absl::StripTrailingAsciiWhitespace(content));
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--api-key-file: '", path, "' is empty"));
  }
  if (key.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--api-key-file: '", path, "' holds more than one line; put only the key in it"));
  }
  return key;
}

}  // namespace uploadbroker::client
