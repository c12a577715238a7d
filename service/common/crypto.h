// Hashes, MACs and randomness over OpenSSL EVP. Pure functions, thread-safe.
// Results are raw bytes; hex or base64 them with common/encoding.h.
#ifndef UPLOADBROKER_COMMON_CRYPTO_H_
#define UPLOADBROKER_COMMON_CRYPTO_H_

#include <string>

#include <openssl/types.h>

#include "absl/strings/string_view.h"

namespace uploadbroker::common {

std::string HmacSha1(absl::string_view key, absl::string_view data);
std::string HmacSha256(absl::string_view key, absl::string_view data);

// An HMAC-SHA256 key prepared once to sign many messages: Sign(data) equals
// HmacSha256(key, data) but skips the per-call keying. Immutable after
// construction; any thread may call Sign concurrently.
class HmacSha256Key {
 public:
  explicit HmacSha256Key(absl::string_view key);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  std::string Sign(absl::string_view data) const;

 private:
  EVP_MAC_CTX* keyed_;  // owned; only ever copied from after construction
};
std::string Sha256(absl::string_view data);
std::string Md5(absl::string_view data);

// MD5 of data fed in pieces (a streamed upload): Update any number of times,
// then Final once; Final(...) equals Md5(all pieces concatenated). One thread
// at a time; not copyable.
class Md5Hasher {
 public:
  Md5Hasher();
  ~Md5Hasher();
  Md5Hasher(const Md5Hasher&) = delete;
  Md5Hasher& operator=(const Md5Hasher&) = delete;

  void Update(absl::string_view data);
  std::string Final();  // raw 16 bytes; call once

 private:
  EVP_MD_CTX* ctx_;  // owned
};

// Compares in time independent of where the inputs differ (lengths may leak).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// `n` bytes from the OpenSSL CSPRNG, hex-encoded (2n characters).
std::string RandomHex(size_t n);

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_CRYPTO_H_
