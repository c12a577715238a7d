#include "osssim/sim_key.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace uploadbroker::osssim {
namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

bool WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << content;
    if (!out) return false;
  }
  chmod(tmp.c_str(), mode);
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

void SimKey::Deleter::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

SimKey SimKey::Generate() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
  UB_CHECK(key != nullptr);
  return SimKey(key);
}

absl::StatusOr<SimKey> SimKey::LoadOrCreate(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::optional<SimKey> key;
  if (in) {
    std::stringstream pem;
    pem << in.rdbuf();
    std::string text = pem.str();
    Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free);
    EVP_PKEY* parsed = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
    if (parsed == nullptr || EVP_PKEY_get_base_id(parsed) != EVP_PKEY_RSA) {
      if (parsed != nullptr) EVP_PKEY_free(parsed);
      return absl::InvalidArgumentError(absl::StrCat(path, ": not an RSA private key PEM"));
    }
    key.emplace(SimKey(parsed));
  } else {
    key.emplace(Generate());
    Bio bio(BIO_new(BIO_s_mem()), &BIO_free);
    UB_CHECK(PEM_write_bio_PrivateKey(bio.get(), key->key_.get(), nullptr, nullptr, 0, nullptr,
                                      nullptr) == 1);
    if (!WriteFile(path, BioString(bio.get()), 0600)) {
      return absl::InternalError(absl::StrCat("cannot write ", path));
    }
  }
  if (!WriteFile(PublicPemPath(path), key->PublicPem(), 0644)) {
    return absl::InternalError(absl::StrCat("cannot write ", PublicPemPath(path)));
  }
  return std::move(*key);
}

std::string SimKey::PublicPem() const {
  Bio bio(BIO_new(BIO_s_mem()), &BIO_free);
  UB_CHECK(PEM_write_bio_PUBKEY(bio.get(), key_.get()) == 1);
  return BioString(bio.get());
}

std::string SimKey::SignMd5(absl::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free);
  UB_CHECK(EVP_DigestSignInit(ctx.get(), nullptr, EVP_md5(), nullptr, key_.get()) == 1);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  UB_CHECK(EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) == 1);
  std::string sig(len, '\0');
  UB_CHECK(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                          data.size()) == 1);
  sig.resize(len);
  return sig;
}

}  // namespace uploadbroker::osssim
