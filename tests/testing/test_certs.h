// TestCa: a throwaway certificate authority made with the openssl CLI
// (UB_OPENSSL_BIN) in a test's temp dir, and the server and client
// certificates it signs. EC P-256 keys, one day of validity; the files are
// PEM, keys unencrypted. Failures are test failures (ADD_FAILURE).
#ifndef UPLOADBROKER_TESTS_TESTING_TEST_CERTS_H_
#define UPLOADBROKER_TESTS_TESTING_TEST_CERTS_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::testing {

struct CertFiles {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key
};

class TestCa {
 public:
  // Writes <name>-ca.pem and <name>-ca.key into `dir` (which must outlive
  // the TestCa).
  TestCa(const TempDir& dir, const std::string& name) : dir_(dir) {
    files_ = {dir.File(name + "-ca.pem"), dir.File(name + "-ca.key")};
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", files_.key, "-out", files_.cert, "-days", "1", "-subj",
             absl::StrCat("/CN=", name, " test CA")});
  }

  const std::string& cert() const { return files_.cert; }

  // A certificate for `name` (also its subject CN) with the given
  // subjectAltName (e.g. "IP:127.0.0.1,DNS:localhost" or
  // "URI:spiffe://example.org/app") and serial number, for TLS servers or
  // clients. Files <name>.pem and <name>.key.
  CertFiles Issue(const std::string& name, const std::string& san, int serial, bool client) const {
    CertFiles out{dir_.File(name + ".pem"), dir_.File(name + ".key")};
    const std::string csr = dir_.File(name + ".csr");
    const std::string ext = dir_.WriteFile(
        name + ".ext", absl::StrCat("basicConstraints=critical,CA:FALSE\n",
                                    "keyUsage=critical,digitalSignature,keyEncipherment\n",
                                    "extendedKeyUsage=", client ? "clientAuth" : "serverAuth", "\n",
                                    "subjectAltName=", san, "\n"));
    Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", out.key, "-out", csr, "-subj", absl::StrCat("/CN=", name)});
    Openssl({"x509", "-req", "-in", csr, "-CA", files_.cert, "-CAkey", files_.key, "-set_serial",
             std::to_string(serial), "-days", "1", "-extfile", ext, "-out", out.cert});
    return out;
  }

 private:
  static void Openssl(std::vector<std::string> args) {
    args.insert(args.begin(), UB_OPENSSL_BIN);
    Exited e = Subprocess::Run(args);
    if (e.code != 0) ADD_FAILURE() << "openssl " << args[1] << " failed: " << e.err;
  }

  const TempDir& dir_;
  CertFiles files_;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_TEST_CERTS_H_
