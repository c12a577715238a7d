// `ubctl --api-key-file PATH`: the API key read from a file, so it never
// appears on a command line (where `ps` shows it to every local user).
#ifndef UPLOADBROKER_CLIENT_API_KEY_FILE_H_
#define UPLOADBROKER_CLIENT_API_KEY_FILE_H_

#include <string>

#include "absl/status/statusor.h"

namespace uploadbroker::client {

// Largest API key file accepted: anything bigger is not a key.
inline constexpr size_t kMaxApiKeyFileBytes = 64 * 1024;

// The key in `path`: its whole content with trailing "\n"/"\r\n" (and other
// trailing whitespace) removed. InvalidArgument naming the path when it
// cannot be read, is larger than kMaxApiKeyFileBytes, or holds no key (empty
// or whitespace only, or a line break inside the key), or is a directory.
// Pipes work: `--api-key-file <(pass show ub)`.
absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_API_KEY_FILE_H_
