// Hashes, MACs and randomness over OpenSSL EVP. Pure functions, thread-safe.
// Results are raw bytes; hex or base64 them with common/encoding.h.
#ifndef UPLOADBROKER_COMMON_CRYPTO_H_
#define UPLOADBROKER_COMMON_CRYPTO_H_

#include <string>

#include "absl/strings/string_view.h"

namespace uploadbroker::common {

std::string HmacSha1(absl::string_view key, absl::string_view data);
std::string HmacSha256(absl::string_view key, absl::string_view data);
std::string Sha256(absl::string_view data);
std::string Md5(absl::string_view data);

// Compares in time independent of where the inputs differ (lengths may leak).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// `n` bytes from the OpenSSL CSPRNG, hex-encoded (2n characters).
std::string RandomHex(size_t n);

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_CRYPTO_H_
