// The broker's gRPC API over TLS and mutual TLS, as users run it: the
// upload-broker and ubctl binaries, certificates made with the openssl CLI.
// Covers: TLS with an API key; a client certificate's URI SAN as the caller
// (no API key) with the same scope; wrong CA and missing client certificate
// refused; certificate files replaced while running are served to new
// connections; plaintext gRPC off loopback refused without the switch and
// warned about with it; unreadable or mismatched files stop the broker
// naming the field.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/main/binary_test.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certs.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Exited;
using testing::Subprocess;

constexpr char kApiKey[] = "tls-test-key";
constexpr char kAppUri[] = "spiffe://example.org/app";

class GrpcTlsTest : public ::testing::Test {
 protected:
  // The broker with `tls_yaml` as its `tls` section (and `listen` as
  // listen.grpc); waits for its ready file. False when it exits first.
  bool Start(const std::string& tls_yaml, const std::string& listen = "127.0.0.1:0") {
    const std::string config = dir_.WriteFile(
        "broker.yaml",
        absl::StrCat("listen: {grpc: \"", listen, "\", http: \"127.0.0.1:0\"}\n",
                     "callback: {url: \"https://broker.example.com/oss/callback\"}\n",
                     "ledger: {path: ", dir_.File("ledger.db"), "}\n",
                     "credentials: {access_key_id_file: ", dir_.WriteFile("ak", "LTAI5tTestId"),
                     ", access_key_secret_file: ", dir_.WriteFile("sk", "test-secret"), "}\n",
                     "buckets: [{name: bkt, region: cn-hangzhou, endpoint: "
                     "\"https://oss-cn-hangzhou.aliyuncs.com\"}]\n",
                     "callers:\n",
                     "  - {name: app, api_key_sha256: ", common::HexEncode(common::Sha256(kApiKey)),
                     tls_yaml.find("client_ca_file") != std::string::npos
                         ? absl::StrCat(", client_cert_uri: \"", kAppUri, "\"")
                         : "",
                     ", buckets: [bkt], key_prefixes: [uploads/app/]}\n", tls_yaml));
    const std::string ready = dir_.File("ready.json");
    std::filesystem::remove(ready);
    broker_.emplace(std::vector<std::string>{UB_BROKER_BIN, "--config", config, "--ready-file", ready});
    if (!testing::WaitForReadyFile(ready, *broker_)) return false;
    std::ifstream in(ready);
    port_ = nlohmann::json::parse(in)["grpc_port"];
    return true;
  }

  // Stops the broker; its log (stdout, then stderr).
  std::string Stop() {
    if (!broker_) return "";
    broker_->Signal(SIGTERM);
    std::optional<Exited> e = broker_->Wait();
    broker_.reset();
    return e ? e->out + e->err : "";
  }

  ~GrpcTlsTest() override { Stop(); }

  // `ubctl policy` for `key` with `flags` (TLS and auth flags) against the
  // broker as localhost.
  Exited Policy(const std::string& key, std::vector<std::string> flags) {
    std::vector<std::string> args = {UB_UBCTL_BIN, "--broker", absl::StrCat("localhost:", port_),
                                     "--bucket", "bkt", "--key", key};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back("policy");
    return Subprocess::Run(args);
  }

  std::string TlsYaml(const std::string& extra = "") const {
    return absl::StrCat("tls:\n  reload_interval: 1s\n  grpc: {cert_file: ", server_.cert,
                        ", key_file: ", server_.key, extra, "}\n");
  }

  // The serial number of the certificate a fresh TLS connection is served.
  std::string ServedSerial() {
    Exited e = Subprocess::Run(
        {"/bin/sh", "-c",
         absl::StrCat(UB_OPENSSL_BIN, " s_client -connect 127.0.0.1:", port_, " -alpn h2 </dev/null 2>/dev/null | ",
                      UB_OPENSSL_BIN, " x509 -noout -serial")});
    return e.out;
  }

  testing::TempDir dir_;
  testing::TestCa ca_{dir_, "main"};
  testing::TestCa rogue_{dir_, "rogue"};
  testing::CertFiles server_ = ca_.Issue("server", "IP:127.0.0.1,DNS:localhost", 0x1001, false);
  testing::CertFiles app_ = ca_.Issue("app", absl::StrCat("URI:", kAppUri), 0x3003, true);
  testing::CertFiles stranger_ = ca_.Issue("stranger", "URI:spiffe://example.org/stranger", 0x4004, true);
  testing::CertFiles forged_ = rogue_.Issue("forged", absl::StrCat("URI:", kAppUri), 0x5005, true);
  std::optional<Subprocess> broker_;
  int port_ = 0;
};

TEST_F(GrpcTlsTest, TlsWithApiKey) {
  ASSERT_TRUE(Start(TlsYaml())) << Stop();
  Exited ok = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--api-key", kApiKey});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("\"upload_id\": \"up_"));
  // --tls alone trusts the system roots, which do not include the test CA.
  Exited untrusted = Policy("uploads/app/a.txt", {"--tls", "--api-key", kApiKey});
  EXPECT_EQ(untrusted.code, 1);
  EXPECT_THAT(untrusted.err, HasSubstr("error: UNAVAILABLE"));
  // A plaintext client cannot talk to the TLS listener.
  Exited plain = Policy("uploads/app/a.txt", {"--api-key", kApiKey});
  EXPECT_EQ(plain.code, 1);
  EXPECT_THAT(plain.err, HasSubstr("error: UNAVAILABLE"));
  // Without a key (and no client certificate): refused.
  Exited anonymous = Policy("uploads/app/a.txt", {"--ca", ca_.cert()});
  EXPECT_EQ(anonymous.code, 1);
  EXPECT_THAT(anonymous.err, HasSubstr("error: UNAUTHENTICATED"));
  EXPECT_THAT(Stop(), HasSubstr("(TLS; config"));
}

TEST_F(GrpcTlsTest, ClientCertificateNamesTheCallerWithoutApiKey) {
  ASSERT_TRUE(Start(TlsYaml(absl::StrCat(", client_ca_file: ", ca_.cert())))) << Stop();
  const std::vector<std::string> mtls = {"--ca", ca_.cert(), "--cert", app_.cert, "--cert-key", app_.key};
  Exited ok = Policy("uploads/app/a.txt", mtls);
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("\"upload_id\": \"up_"));
  // The same scope as the caller's API key: outside its prefix is denied.
  Exited outside = Policy("uploads/other/a.txt", mtls);
  EXPECT_EQ(outside.code, 1);
  EXPECT_THAT(outside.err, HasSubstr("error: PERMISSION_DENIED"));
  // A certificate from the same CA whose URI names no caller.
  Exited stranger = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--cert", stranger_.cert,
                                                 "--cert-key", stranger_.key});
  EXPECT_EQ(stranger.code, 1);
  EXPECT_THAT(stranger.err, HasSubstr("error: UNAUTHENTICATED"));
  EXPECT_THAT(stranger.err, HasSubstr("no client certificate URI names a caller"));
  // The right URI from a CA the broker does not trust: the handshake fails.
  Exited forged = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--cert", forged_.cert,
                                               "--cert-key", forged_.key});
  EXPECT_EQ(forged.code, 1);
  EXPECT_THAT(forged.err, HasSubstr("error: UNAVAILABLE"));
  // Client certificates optional: an API key alone still works.
  Exited by_key = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--api-key", kApiKey});
  EXPECT_EQ(by_key.code, 0) << by_key.err;
  EXPECT_THAT(Stop(), HasSubstr("(TLS, client certificates optional; config"));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// #17 item 4: a Subscribe stream authenticated by its client certificate
// ends UNAUTHENTICATED once SIGHUP unmaps the certificate's URI.
TEST_F(GrpcTlsTest, UnmappedCertificateEndsItsOpenStreamOnSighup) {
  ASSERT_TRUE(Start(TlsYaml(absl::StrCat(", client_ca_file: ", ca_.cert())))) << Stop();
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = Slurp(ca_.cert());
  tls.pem_cert_chain = Slurp(app_.cert);
  tls.pem_private_key = Slurp(app_.key);
  auto stub = v1::UploadBroker::NewStub(
      grpc::CreateChannel(absl::StrCat("localhost:", port_), grpc::SslCredentials(tls)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub->Subscribe(&ctx, v1::SubscribeRequest());
  reader->WaitForInitialMetadata();
  ASSERT_FALSE(ctx.GetServerInitialMetadata().empty()) << "the stream did not start";

  const std::string config = dir_.File("broker.yaml");
  std::string yaml = Slurp(config);
  const std::string mapping = absl::StrCat(", client_cert_uri: \"", kAppUri, "\"");
  ASSERT_NE(yaml.find(mapping), std::string::npos);
  yaml.erase(yaml.find(mapping), mapping.size());
  dir_.WriteFile("broker.yaml", yaml);
  broker_->Signal(SIGHUP);

  const absl::Time start = absl::Now();
  v1::SubscribeResponse resp;
  EXPECT_FALSE(reader->Read(&resp));
  grpc::Status st = reader->Finish();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("client certificate"));
  EXPECT_THAT(st.error_message(), HasSubstr("no longer names a caller"));
  EXPECT_THAT(Stop(), HasSubstr("reloaded the callers section"));
}

TEST_F(GrpcTlsTest, RequiredClientCertificateRefusesConnectionsWithoutOne) {
  ASSERT_TRUE(Start(TlsYaml(absl::StrCat(", client_ca_file: ", ca_.cert(),
                                         ", require_client_cert: true"))))
      << Stop();
  Exited no_cert = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--api-key", kApiKey});
  EXPECT_EQ(no_cert.code, 1);
  EXPECT_THAT(no_cert.err, HasSubstr("error: UNAVAILABLE"));
  Exited forged = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--cert", forged_.cert,
                                               "--cert-key", forged_.key, "--api-key", kApiKey});
  EXPECT_EQ(forged.code, 1);
  EXPECT_THAT(forged.err, HasSubstr("error: UNAVAILABLE"));
  Exited ok = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--cert", app_.cert, "--cert-key", app_.key});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(Stop(), HasSubstr("(TLS, client certificates required; config"));
}

TEST_F(GrpcTlsTest, ReplacedCertificateFilesServeNewConnections) {
  // The broker reads the files it is configured with; the test swaps them.
  const std::string cert = dir_.File("live.pem");
  const std::string key = dir_.File("live.key");
  std::filesystem::copy_file(server_.cert, cert);
  std::filesystem::copy_file(server_.key, key);
  ASSERT_TRUE(Start(absl::StrCat("tls:\n  reload_interval: 1s\n  grpc: {cert_file: ", cert,
                                 ", key_file: ", key, "}\n")))
      << Stop();
  EXPECT_EQ(ServedSerial(), "serial=1001\n");
  testing::CertFiles renewed = ca_.Issue("renewed", "IP:127.0.0.1,DNS:localhost", 0x2002, false);
  // Replace each file by a rename, as a Secret update or cert-manager does.
  std::filesystem::copy_file(renewed.key, key + ".new");
  std::filesystem::copy_file(renewed.cert, cert + ".new");
  std::filesystem::rename(key + ".new", key);
  std::filesystem::rename(cert + ".new", cert);
  std::string served;
  for (int i = 0; i < 100 && served != "serial=2002\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    served = ServedSerial();
  }
  EXPECT_EQ(served, "serial=2002\n");
  Exited ok = Policy("uploads/app/a.txt", {"--ca", ca_.cert(), "--api-key", kApiKey});
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST_F(GrpcTlsTest, PlaintextOffLoopbackNeedsTheSwitchAndWarns) {
  EXPECT_FALSE(Start("", "0.0.0.0:0"));
  std::string refused = Stop();
  EXPECT_THAT(refused, HasSubstr("broker.yaml: listen.grpc: '0.0.0.0:0' is not a loopback address"));
  EXPECT_THAT(refused, HasSubstr("tls.allow_plaintext_grpc: true"));

  ASSERT_TRUE(Start("tls: {allow_plaintext_grpc: true}\n", "0.0.0.0:0")) << Stop();
  Exited ok = Policy("uploads/app/a.txt", {"--api-key", kApiKey});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_THAT(Stop(), HasSubstr("PLAINTEXT gRPC (tls.allow_plaintext_grpc: true) on 0.0.0.0:0"));

  // Loopback plaintext stays the quiet default for development.
  ASSERT_TRUE(Start("")) << Stop();
  EXPECT_THAT(Stop(), Not(HasSubstr("PLAINTEXT")));
}

TEST_F(GrpcTlsTest, BadFilesStopTheBrokerNamingTheField) {
  EXPECT_FALSE(Start(absl::StrCat("tls: {grpc: {cert_file: ", dir_.File("missing.pem"),
                                  ", key_file: ", server_.key, "}}\n")));
  EXPECT_THAT(Stop(), HasSubstr("broker.yaml: tls.grpc.cert_file: cannot read '"));
  EXPECT_FALSE(Start(absl::StrCat("tls: {grpc: {cert_file: ", server_.cert, ", key_file: ", app_.key,
                                  "}}\n")));
  EXPECT_THAT(Stop(), HasSubstr("tls.grpc.key_file: '" + app_.key + "' is not the key of the first certificate"));
  EXPECT_FALSE(Start(absl::StrCat("tls: {grpc: {cert_file: ", server_.cert, ", key_file: ", server_.key,
                                  ", client_ca_file: ", server_.key, "}}\n")));
  EXPECT_THAT(Stop(), HasSubstr("tls.grpc.client_ca_file: '" + server_.key + "' holds no PEM certificate"));
}

}  // namespace
}  // namespace uploadbroker
