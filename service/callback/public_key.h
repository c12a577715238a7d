// PublicKey: an RSA public key that checks OSS callback signatures
// (RSASSA-PKCS1-v1_5 over MD5, oss-protocol.md §5.2), over OpenSSL EVP.
//
// Immutable after construction; every const method may be called from any
// number of threads at once. Move-only; owns its EVP_PKEY and a verification
// context prepared once from it (MD5 fetched, PKCS#1 v1.5 padding set), which
// each VerifyMd5 call copies instead of looking the algorithms up again.
#ifndef UPLOADBROKER_CALLBACK_PUBLIC_KEY_H_
#define UPLOADBROKER_CALLBACK_PUBLIC_KEY_H_

#include <openssl/types.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::callback {

class PublicKey {
 public:
  // Parses one SubjectPublicKeyInfo PEM block ("BEGIN PUBLIC KEY").
  // InvalidArgument if it does not parse or is not an RSA key.
  static absl::StatusOr<PublicKey> FromPem(absl::string_view pem);

  PublicKey(PublicKey&&) = default;
  PublicKey& operator=(PublicKey&&) = default;

  // Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo: the value to pin.
  std::string SpkiSha256Hex() const;

  // OK if `signature` (raw bytes) is a valid PKCS#1 v1.5 MD5 signature of
  // `data` by this key; Unauthenticated if it is not; Internal if OpenSSL
  // cannot run the check (e.g. a FIPS-only provider refuses MD5).
  absl::Status VerifyMd5(absl::string_view data,
                         absl::string_view signature) const;

 private:
  struct Deleter {
    void operator()(EVP_PKEY* key) const;
    void operator()(EVP_MD_CTX* ctx) const;
  };
  PublicKey(std::unique_ptr<EVP_PKEY, Deleter> key,
            std::unique_ptr<EVP_MD_CTX, Deleter> prepared)
      : key_(std::move(key)), prepared_(std::move(prepared)) {}

  std::unique_ptr<EVP_PKEY, Deleter> key_;  // Never null.
  // EVP_DigestVerifyInit'ed for RSA-MD5 with PKCS#1 v1.5 padding; only ever
  // copied from (EVP_MD_CTX_copy_ex reads it). Null if OpenSSL refused to
  // set it up (e.g. a FIPS-only provider without MD5): VerifyMd5 then fails
  // with Internal.
  std::unique_ptr<EVP_MD_CTX, Deleter> prepared_;
};

// OSS's callback key v1 (RSA-512), compiled into the binary and parsed on
// first use. Served at the two URLs in verifier.h; its SPKI SHA-256 is
// a1f54d0fb9263a14276c9e890f99cdeae986265b3985e6b1aa4603631c5bc9cf.
const PublicKey& OssPinnedKey();

}  // namespace uploadbroker::callback

#endif  // UPLOADBROKER_CALLBACK_PUBLIC_KEY_H_
