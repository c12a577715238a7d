// SimKey: the simulator's own RSA key, which signs callbacks the way OSS
// signs them (RSASSA-PKCS1-v1_5 over MD5, oss-protocol.md §5.2).
// Immutable after creation; Sign() may run on any thread. Move-only.
#ifndef UPLOADBROKER_OSSSIM_SIM_KEY_H_
#define UPLOADBROKER_OSSSIM_SIM_KEY_H_

#include <openssl/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::osssim {

class SimKey {
 public:
  // Reads the PEM private key at `path`; if the file does not exist, makes
  // a 2048-bit key and writes it there (mode 0600). Either way writes the
  // public PEM to PublicPemPath(path). Errors: Internal / InvalidArgument.
  static absl::StatusOr<SimKey> LoadOrCreate(const std::string& path);
  // A fresh in-memory key (tests).
  static SimKey Generate();

  static std::string PublicPemPath(const std::string& key_path) { return key_path + ".pub"; }

  std::string PublicPem() const;
  // Raw signature bytes of `data`.
  std::string SignMd5(absl::string_view data) const;

 private:
  struct Deleter {
    void operator()(EVP_PKEY* key) const;
  };
  explicit SimKey(EVP_PKEY* key) : key_(key) {}
  std::unique_ptr<EVP_PKEY, Deleter> key_;  // never null
};

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_SIM_KEY_H_
