// tls::CheckCertAndKey / CheckCaBundle: what stops the broker at startup,
// naming the config field, before any handshake could fail.
#include "tls/pem_files.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certs.h"

namespace uploadbroker::tls {
namespace {

using ::testing::HasSubstr;

class PemFilesTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  testing::TestCa ca_{dir_, "main"};
  testing::CertFiles server_ = ca_.Issue("server", "IP:127.0.0.1", 1, false);
  testing::CertFiles other_ = ca_.Issue("other", "IP:127.0.0.1", 2, false);
};

TEST_F(PemFilesTest, MatchingPairAndCaBundlePass) {
  EXPECT_TRUE(CheckCertAndKey("tls.grpc", server_.cert, server_.key).ok());
  EXPECT_TRUE(CheckCaBundle("tls.grpc.client_ca_file", ca_.cert()).ok());
}

TEST_F(PemFilesTest, MissingFilesNameTheirField) {
  absl::Status st = CheckCertAndKey("tls.grpc", dir_.File("nope.pem"), server_.key);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tls.grpc.cert_file: cannot read '"));
  EXPECT_THAT(CheckCertAndKey("tls.http", server_.cert, dir_.File("nope.key")).message(),
              HasSubstr("tls.http.key_file: cannot read '"));
  EXPECT_THAT(CheckCaBundle("tls.grpc.client_ca_file", dir_.File("nope.pem")).message(),
              HasSubstr("tls.grpc.client_ca_file: cannot read '"));
}

TEST_F(PemFilesTest, EmptyOrGarbageFilesAreRefused) {
  const std::string empty = dir_.WriteFile("empty.pem", "");
  const std::string garbage = dir_.WriteFile("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  EXPECT_THAT(CheckCertAndKey("tls.grpc", empty, server_.key).message(),
              HasSubstr("tls.grpc.cert_file: '" + empty + "' is empty"));
  EXPECT_THAT(CheckCertAndKey("tls.grpc", garbage, server_.key).message(),
              HasSubstr("tls.grpc.cert_file: '" + garbage + "' holds no PEM certificate"));
  EXPECT_THAT(CheckCertAndKey("tls.grpc", server_.cert, server_.cert).message(),
              HasSubstr("tls.grpc.key_file: '" + server_.cert + "' holds no unencrypted PEM private key"));
  EXPECT_THAT(CheckCaBundle("tls.grpc.client_ca_file", server_.key).message(),
              HasSubstr("holds no PEM certificate"));
}

TEST_F(PemFilesTest, KeyOfAnotherCertificateIsRefused) {
  absl::Status st = CheckCertAndKey("tls.grpc", server_.cert, other_.key);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("tls.grpc.key_file: '" + other_.key +
                                      "' is not the key of the first certificate in '" +
                                      server_.cert + "'"));
}

}  // namespace
}  // namespace uploadbroker::tls
