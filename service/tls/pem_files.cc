#include "tls/pem_files.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace uploadbroker::tls {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The certificates in `pem`, in order (the first is the leaf).
int CountCerts(const std::string& pem, Cert* first) {
  Bio bio = MemoryBio(pem);
  int n = 0;
  while (Cert cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (n++ == 0 && first != nullptr) *first = std::move(cert);
  }
  return n;
}

absl::Status Fail(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(absl::string_view field, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(field, absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  std::stringstream s;
  s << in.rdbuf();
  if (s.str().empty()) return Fail(field, absl::StrCat("'", path, "' is empty"));
  return s.str();
}

absl::Status CheckCertAndKey(absl::string_view section, const std::string& cert_file,
                             const std::string& key_file) {
  const std::string cert_field = absl::StrCat(section, ".cert_file");
  const std::string key_field = absl::StrCat(section, ".key_file");
  absl::StatusOr<std::string> cert_pem = ReadPemFile(cert_field, cert_file);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadPemFile(key_field, key_file);
  if (!key_pem.ok()) return key_pem.status();
  Cert leaf;
  if (CountCerts(*cert_pem, &leaf) == 0) {
    return Fail(cert_field, absl::StrCat("'", cert_file, "' holds no PEM certificate"));
  }
  Bio key_bio = MemoryBio(*key_pem);
  Key key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return Fail(key_field,
                absl::StrCat("'", key_file, "' holds no unencrypted PEM private key"));
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    return Fail(key_field, absl::StrCat("'", key_file, "' is not the key of the first certificate in '",
                                        cert_file, "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckCaBundle(absl::string_view field, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadPemFile(field, path);
  if (!pem.ok()) return pem.status();
  if (CountCerts(*pem, nullptr) == 0) {
    return Fail(field, absl::StrCat("'", path, "' holds no PEM certificate"));
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::tls
