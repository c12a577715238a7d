#include "common/crypto.h"

#include <pthread.h>

#include <atomic>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/check.h"
#include "common/encoding.h"

namespace uploadbroker::common {
namespace {

// OpenSSL 3 resolves an algorithm name through its provider tables on every
// one-shot call (HMAC(), EVP_Digest() with EVP_sha256()), which costs more
// than hashing a short input. Each algorithm is therefore fetched once, for
// the life of the process, and every call reuses the fetched object. The
// objects are immutable after construction, so sharing them across threads
// is safe.
class FetchedHmac {
 public:
  explicit FetchedHmac(const char* digest) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    UB_CHECK(mac != nullptr);
    prototype_ = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);  // the context keeps its own reference
    UB_CHECK(prototype_ != nullptr);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_end()};
    UB_CHECK(EVP_MAC_CTX_set_params(prototype_, params) == 1);
  }

  // A copy of the configured prototype, keyed: skips the digest lookup.
  EVP_MAC_CTX* NewKeyed(absl::string_view key) const {
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(prototype_);
    UB_CHECK(ctx != nullptr);
    static const unsigned char kEmpty[1] = {0};
    const unsigned char* k =
        key.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(key.data());
    UB_CHECK(EVP_MAC_init(ctx, k, key.size(), nullptr) == 1);
    return ctx;
  }

  std::string Compute(absl::string_view key, absl::string_view data) const {
    EVP_MAC_CTX* ctx = NewKeyed(key);
    std::string mac = Finish(ctx, data);
    EVP_MAC_CTX_free(ctx);
    return mac;
  }

  // Feeds `data` into a keyed context and returns the MAC; `ctx` is spent.
  static std::string Finish(EVP_MAC_CTX* ctx, absl::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t len = 0;
    UB_CHECK(EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()),
                            data.size()) == 1);
    UB_CHECK(EVP_MAC_final(ctx, out, &len, sizeof(out)) == 1);
    return std::string(reinterpret_cast<char*>(out), len);
  }

 private:
  EVP_MAC_CTX* prototype_ = nullptr;
};

const EVP_MD* FetchedDigest(const char* name) {
  const EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  UB_CHECK(md != nullptr);
  return md;
}

std::string Digest(const EVP_MD* md, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  UB_CHECK(EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) == 1);
  return std::string(reinterpret_cast<char*>(out), len);
}

// Fetched on first use and never freed (function-local statics: created once,
// thread-safely, and never destroyed, so no shutdown-order hazard).
const FetchedHmac& Sha1Hmac() {
  static const FetchedHmac* const hmac = new FetchedHmac("SHA1");
  return *hmac;
}
const FetchedHmac& Sha256Hmac() {
  static const FetchedHmac* const hmac = new FetchedHmac("SHA256");
  return *hmac;
}

}  // namespace

std::string HmacSha1(absl::string_view key, absl::string_view data) {
  return Sha1Hmac().Compute(key, data);
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  return Sha256Hmac().Compute(key, data);
}

HmacSha256Key::HmacSha256Key(absl::string_view key) : keyed_(Sha256Hmac().NewKeyed(key)) {}
HmacSha256Key::~HmacSha256Key() { EVP_MAC_CTX_free(keyed_); }

std::string HmacSha256Key::Sign(absl::string_view data) const {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(keyed_);
  UB_CHECK(ctx != nullptr);
  std::string mac = FetchedHmac::Finish(ctx, data);
  EVP_MAC_CTX_free(ctx);
  return mac;
}
std::string Sha256(absl::string_view data) {
  static const EVP_MD* const md = FetchedDigest("SHA256");
  return Digest(md, data);
}
std::string Md5(absl::string_view data) {
  static const EVP_MD* const md = FetchedDigest("MD5");
  return Digest(md, data);
}

Md5Hasher::Md5Hasher() : ctx_(EVP_MD_CTX_new()) {
  static const EVP_MD* const md = FetchedDigest("MD5");
  UB_CHECK(ctx_ != nullptr && EVP_DigestInit_ex(ctx_, md, nullptr) == 1);
}
Md5Hasher::~Md5Hasher() { EVP_MD_CTX_free(ctx_); }

void Md5Hasher::Update(absl::string_view data) {
  UB_CHECK(EVP_DigestUpdate(ctx_, data.data(), data.size()) == 1);
}

std::string Md5Hasher::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  UB_CHECK(EVP_DigestFinal_ex(ctx_, out, &len) == 1);
  return std::string(reinterpret_cast<char*>(out), len);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// A call to RAND_bytes costs about as much for ten bytes as for hundreds
// (locking, DRBG bookkeeping), and every issued upload id takes ten. So each
// thread draws CSPRNG output a block at a time and hands out every byte
// once. A forked child would inherit its parent's unused bytes, so a fork
// discards every thread's block.
std::atomic<uint64_t> fork_generation{0};

class RandomBlock {
 public:
  RandomBlock() {
    static const bool registered = [] {
      return pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }) == 0;
    }();
    UB_CHECK(registered);
  }

  void Take(unsigned char* out, size_t n) {
    if (n > sizeof(bytes_)) {
      UB_CHECK(RAND_bytes(out, static_cast<int>(n)) == 1);
      return;
    }
    const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
    if (generation != generation_ || sizeof(bytes_) - used_ < n) {
      UB_CHECK(RAND_bytes(bytes_, sizeof(bytes_)) == 1);
      used_ = 0;
      generation_ = generation;
    }
    std::memcpy(out, bytes_ + used_, n);
    OPENSSL_cleanse(bytes_ + used_, n);
    used_ += n;
  }

 private:
  unsigned char bytes_[512];
  size_t used_ = sizeof(bytes_);
  uint64_t generation_ = 0;
};

}  // namespace

std::string RandomHex(size_t n) {
  static thread_local RandomBlock block;
  std::string bytes(n, '\0');
  block.Take(reinterpret_cast<unsigned char*>(bytes.data()), n);
  return HexEncode(bytes);
}

}  // namespace uploadbroker::common
