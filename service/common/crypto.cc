#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/check.h"
#include "common/encoding.h"

namespace uploadbroker::common {
namespace {

std::string Hmac(const EVP_MD* md, absl::string_view key,
                 absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  UB_CHECK(HMAC(md, key.data(), static_cast<int>(key.size()),
                reinterpret_cast<const unsigned char*>(data.data()),
                data.size(), out, &len) != nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Digest(const EVP_MD* md, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  UB_CHECK(EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) == 1);
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

std::string HmacSha1(absl::string_view key, absl::string_view data) {
  return Hmac(EVP_sha1(), key, data);
}
std::string HmacSha256(absl::string_view key, absl::string_view data) {
  return Hmac(EVP_sha256(), key, data);
}
std::string Sha256(absl::string_view data) { return Digest(EVP_sha256(), data); }
std::string Md5(absl::string_view data) { return Digest(EVP_md5(), data); }

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RandomHex(size_t n) {
  std::string bytes(n, '\0');
  UB_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()),
                      static_cast<int>(n)) == 1);
  return HexEncode(bytes);
}

}  // namespace uploadbroker::common
