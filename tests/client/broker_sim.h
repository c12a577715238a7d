// BrokerSimTest: a real oss-sim and a real broker on loopback, configured
// for each other as scripts/run.sh does (oss-sim calls the broker back
// through a relay), with one caller "app" (API key kApiKey, bucket
// devbucket, keys under uploads/, objects up to 10 GiB). For tests of the
// client library and of the ubctl binary against the whole product.
#ifndef UPLOADBROKER_TESTS_CLIENT_BROKER_SIM_H_
#define UPLOADBROKER_TESTS_CLIENT_BROKER_SIM_H_

#include <curl/curl.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gtest/gtest.h"
#include "osssim/object_store.h"
#include "osssim/simulator.h"
#include "server/server.h"
#include "tests/testing/tcp_relay.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::testing {

class BrokerSimTest : public ::testing::Test {
 protected:
  static constexpr char kApiKey[] = "key-app";
  static constexpr int64_t kPart = 100 * 1024;  // OSS's smallest part but the last

  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osssim::SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials.access_key_id = "LTAI5tSimTestId";
    so.credentials.access_key_secret = "sim-test-secret";
    auto sim = osssim::Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    std::string yaml = absl::StrCat(
        "development: true\n",
        "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\"}\n",
        "callback: {url: \"http://127.0.0.1:", relay_.port(), "/oss/callback\", trusted_key_url: \"",
        sim_->public_key_url(), "\", trusted_key_file: ",
        dir_.WriteFile("sim.pem", sim_->public_key_pem()), "}\n",
        "ledger: {path: ", dir_.File("ledger.db"), "}\n",
        "credentials: {access_key_id_file: ", dir_.WriteFile("ak", so.credentials.access_key_id),
        ", access_key_secret_file: ", dir_.WriteFile("sk", so.credentials.access_key_secret),
        "}\n",
        "buckets:\n  - {name: devbucket, region: cn-hangzhou, endpoint: \"http://127.0.0.1:",
        sim_->port(), "\", path_style: true}\n",
        "callers:\n  - name: app\n    api_key_sha256: ", common::HexEncode(common::Sha256(kApiKey)),
        "\n    buckets: [devbucket]\n    key_prefixes: [uploads/]\n    max_size: 10737418240\n");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    broker_ = *std::move(s);
    relay_.SetTarget(broker_->http_port());
    client_ = std::make_unique<client::BrokerClient>(target(), kApiKey);
  }

  std::string target() const { return absl::StrCat("127.0.0.1:", broker_->grpc_port()); }

  // The object oss-sim stores at `key` in devbucket (nullopt: none).
  std::optional<std::string> Stored(const std::string& key) const {
    return osssim::ObjectStore(dir_.File("sim")).Read("devbucket", key);
  }

  // Deterministic, part-distinguishing bytes; `seed` makes another version.
  static std::string Data(size_t n, int seed = 0) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7 + seed * 17) & 0xff);
    return s;
  }

  testing::TempDir dir_;
  testing::TcpRelay relay_;
  std::unique_ptr<osssim::Simulator> sim_;
  std::unique_ptr<server::Server> broker_;
  std::unique_ptr<client::BrokerClient> client_;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_CLIENT_BROKER_SIM_H_
