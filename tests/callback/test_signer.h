// TestSigner: a throwaway RSA key that signs callbacks the way OSS does
// (RSASSA-PKCS1-v1_5 over MD5, oss-protocol.md §5.2). Tests only.
#ifndef UPLOADBROKER_TESTS_CALLBACK_TEST_SIGNER_H_
#define UPLOADBROKER_TESTS_CALLBACK_TEST_SIGNER_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "callback/public_key.h"
#include "common/check.h"
#include "common/encoding.h"

namespace uploadbroker::callback {

class TestSigner {
 public:
  explicit TestSigner(size_t bits = 1024)
      : key_(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits), &EVP_PKEY_free) {
    UB_CHECK(key_ != nullptr);
  }

  std::string PublicPem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()),
                                                  &BIO_free);
    UB_CHECK(PEM_write_bio_PUBKEY(bio.get(), key_.get()) == 1);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
  }

  PublicKey Public() const {
    absl::StatusOr<PublicKey> key = PublicKey::FromPem(PublicPem());
    UB_CHECK(key.ok());
    return *std::move(key);
  }

  // Raw signature bytes over `data` with `md` (OSS uses EVP_md5()).
  std::string Sign(absl::string_view data, const EVP_MD* md = EVP_md5()) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    UB_CHECK(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_.get()) ==
             1);
    size_t len = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(data.data());
    UB_CHECK(EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) == 1);
    std::string sig(len, '\0');
    UB_CHECK(EVP_DigestSign(ctx.get(),
                            reinterpret_cast<unsigned char*>(sig.data()), &len,
                            in, data.size()) == 1);
    sig.resize(len);
    return sig;
  }

  // The Authorization header OSS would send for `string_to_sign`.
  std::string Authorization(absl::string_view string_to_sign) const {
    return common::Base64Encode(Sign(string_to_sign));
  }

 private:
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_;
};

}  // namespace uploadbroker::callback

#endif  // UPLOADBROKER_TESTS_CALLBACK_TEST_SIGNER_H_
