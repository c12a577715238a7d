#include "callback/public_key.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <climits>

#include "common/crypto.h"
#include "common/encoding.h"

namespace uploadbroker::callback {

namespace {

// An EVP_MD_CTX ready for EVP_DigestVerify of RSA PKCS#1 v1.5 over MD5 by
// `key`, or null if OpenSSL refuses. The digest and the signature algorithm
// are looked up here once; a copy of the result verifies without lookups.
EVP_MD_CTX* PrepareMd5Verify(EVP_PKEY* key) {
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md5(
      EVP_MD_fetch(nullptr, "MD5", nullptr), &EVP_MD_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;  // Owned by ctx.
  if (md5 == nullptr || ctx == nullptr ||
      EVP_DigestVerifyInit(ctx.get(), &pctx, md5.get(), nullptr, key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  return ctx.release();  // Holds its own references to md5 and key.
}

}  // namespace

void PublicKey::Deleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
void PublicKey::Deleter::operator()(EVP_MD_CTX* ctx) const {
  EVP_MD_CTX_free(ctx);
}

absl::StatusOr<PublicKey> PublicKey::FromPem(absl::string_view pem) {
  if (pem.size() > INT_MAX) return absl::InvalidArgumentError("PEM too large");
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  std::unique_ptr<EVP_PKEY, Deleter> key(
      PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();  // Leave nothing on this thread's error queue.
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        "public key: not a PEM SubjectPublicKeyInfo");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    return absl::InvalidArgumentError("public key: not RSA");
  }
  std::unique_ptr<EVP_MD_CTX, Deleter> prepared(PrepareMd5Verify(key.get()));
  return PublicKey(std::move(key), std::move(prepared));
}

std::string PublicKey::SpkiSha256Hex() const {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key_.get(), &der);
  if (len <= 0) return "";  // Cannot happen for a key FromPem accepted.
  std::string digest = common::Sha256(absl::string_view(
      reinterpret_cast<const char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  return common::HexEncode(digest);
}

absl::Status PublicKey::VerifyMd5(absl::string_view data,
                                  absl::string_view signature) const {
  std::unique_ptr<EVP_MD_CTX, Deleter> ctx(EVP_MD_CTX_new());
  if (prepared_ == nullptr || ctx == nullptr ||
      EVP_MD_CTX_copy_ex(ctx.get(), prepared_.get()) != 1) {
    ERR_clear_error();
    return absl::InternalError("OpenSSL refuses RSA-MD5 verification");
  }
  int rc = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
      signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
      data.size());
  ERR_clear_error();
  // 0 is a bad signature; < 0 includes malformed ones (e.g. wrong length).
  if (rc != 1) return absl::UnauthenticatedError("signature does not verify");
  return absl::OkStatus();
}

}  // namespace uploadbroker::callback
