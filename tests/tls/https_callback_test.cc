// The callback listener over HTTPS, end to end: oss-sim (trusting the test
// CA for https:// callback URLs) calls the broker's https callback URL after
// an upload made with the client over TLS gRPC, and the broker records the
// upload. A client that does not speak TLS is refused and counted, and a
// replaced certificate is served to new connections.
#include <curl/curl.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/broker_client.h"
#include "client/channel.h"
#include "client/upload.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "osssim/simulator.h"
#include "server/server.h"
#include "tests/testing/http_get.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/tcp_relay.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certs.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;

constexpr char kAk[] = "LTAI5tHttpsTest";
constexpr char kSk[] = "https-test-secret";
constexpr char kApiKey[] = "https-test-key";

class HttpsCallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    std::filesystem::copy_file(server_.cert, cert_);
    std::filesystem::copy_file(server_.key, key_);
    osssim::SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials.access_key_id = kAk;
    so.credentials.access_key_secret = kSk;
    so.callback_ca_file = ca_.cert();
    auto sim = osssim::Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    std::string yaml = absl::StrCat(
        "development: true\n",  // oss-sim's endpoint and key are plain HTTP
        "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\", metrics_on_public_port: true}\n",
        "callback: {url: \"https://127.0.0.1:", relay_.port(), "/oss/callback\", trusted_key_url: \"",
        sim_->public_key_url(), "\", trusted_key_file: ",
        dir_.WriteFile("sim.pem", sim_->public_key_pem()), "}\n",
        "ledger: {path: ", dir_.File("ledger.db"), "}\n",
        "credentials: {access_key_id_file: ", dir_.WriteFile("ak", kAk),
        ", access_key_secret_file: ", dir_.WriteFile("sk", kSk), "}\n",
        "buckets:\n  - {name: devbucket, region: cn-hangzhou, endpoint: \"http://127.0.0.1:",
        sim_->port(), "\", path_style: true}\n",
        "callers:\n  - name: app\n    api_key_sha256: ", common::HexEncode(common::Sha256(kApiKey)),
        "\n    buckets: [devbucket]\n    key_prefixes: [uploads/]\n",
        "tls:\n  reload_interval: 1s\n",
        "  grpc: {cert_file: ", cert_, ", key_file: ", key_, "}\n",
        "  http: {cert_file: ", cert_, ", key_file: ", key_, "}\n");
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    server::Options opts;
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    broker_ = *std::move(s);
    relay_.SetTarget(broker_->http_port());
    client::ChannelSecurity security;
    security.ca_file = ca_.cert();
    auto credentials = client::MakeChannelCredentials(security);
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    credentials_ = *credentials;
  }

  // GET https://127.0.0.1:<http port><path> trusting the test CA; the body,
  // or "" when the TLS connection fails.
  std::string HttpsGet(const std::string& path) {
    std::string body;
    CURL* c = curl_easy_init();
    const std::string url = absl::StrCat("https://127.0.0.1:", broker_->http_port(), path);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_.cert().c_str());
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &testing::AppendToString);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? body : "";
  }

  std::string ServedSerial() {
    testing::Exited e = testing::Subprocess::Run(
        {"/bin/sh", "-c",
         absl::StrCat(UB_OPENSSL_BIN, " s_client -connect 127.0.0.1:", broker_->http_port(),
                      " </dev/null 2>/dev/null | ", UB_OPENSSL_BIN, " x509 -noout -serial")});
    return e.out;
  }

  testing::TempDir dir_;
  testing::TestCa ca_{dir_, "main"};
  testing::CertFiles server_ = ca_.Issue("server", "IP:127.0.0.1,DNS:localhost", 0x1001, false);
  const std::string cert_ = dir_.File("live.pem");
  const std::string key_ = dir_.File("live.key");
  testing::TcpRelay relay_;
  std::unique_ptr<osssim::Simulator> sim_;
  std::unique_ptr<server::Server> broker_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

TEST_F(HttpsCallbackTest, UploadThroughOssSimIsRecordedOverHttps) {
  client::UploadArgs args;
  args.target = absl::StrCat("localhost:", broker_->grpc_port());
  args.credentials = credentials_;
  args.api_key = kApiKey;
  args.bucket = "devbucket";
  args.key = "uploads/https.txt";
  args.content_type = "text/plain";
  args.file = dir_.WriteFile("upload.txt", "over https\n");
  std::ostringstream out, err;
  ASSERT_EQ(client::Upload(args, out, err), 0) << err.str();
  // What OSS relayed is the broker's callback answer.
  EXPECT_THAT(out.str(), HasSubstr("\"key\": \"uploads/https.txt\""));
  const std::string id = nlohmann::json::parse(out.str())["upload_id"];
  client::BrokerClient broker(args.target, credentials_, kApiKey);
  absl::StatusOr<v1::Upload> upload = broker.GetUpload(id);
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_EQ(upload->state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(upload->completion().size(), 11);
}

TEST_F(HttpsCallbackTest, PlainHttpClientIsRefusedAndCounted) {
  EXPECT_EQ(testing::HttpGet(absl::StrCat("http://127.0.0.1:", broker_->http_port(), "/healthz")), "");
  EXPECT_THAT(HttpsGet("/metrics"),
              HasSubstr("upload_broker_http_rejected_total{reason=\"tls_handshake\"} 1"));
  EXPECT_THAT(HttpsGet("/healthz"), HasSubstr("\"status\":\"ok\""));
}

TEST_F(HttpsCallbackTest, ReplacedCertificateIsServedToNewConnections) {
  EXPECT_EQ(ServedSerial(), "serial=1001\n");
  testing::CertFiles renewed = ca_.Issue("renewed", "IP:127.0.0.1,DNS:localhost", 0x2002, false);
  std::filesystem::copy_file(renewed.key, key_ + ".new");
  std::filesystem::copy_file(renewed.cert, cert_ + ".new");
  std::filesystem::rename(key_ + ".new", key_);
  std::filesystem::rename(cert_ + ".new", cert_);
  std::string served;
  for (int i = 0; i < 100 && served != "serial=2002\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    served = ServedSerial();
  }
  EXPECT_EQ(served, "serial=2002\n");
  EXPECT_THAT(HttpsGet("/healthz"), HasSubstr("\"status\":\"ok\""));
}

}  // namespace
}  // namespace uploadbroker
