// ConfirmE2eTest: the fixture of the confirmation end-to-end tests. A real
// broker, a real oss-sim as "our" OSS, reached through a relay (oss_) the
// test can point elsewhere (an OSS that is down or hangs) and that counts the
// HeadObjects sent (oss_.heads()), callbacks signed with the simulator's own
// callback key as OSS would sign them (Post), objects stored straight into
// oss-sim's data directory (Store, StoreOld).
#ifndef UPLOADBROKER_TESTS_INGEST_CONFIRM_FIXTURE_H_
#define UPLOADBROKER_TESTS_INGEST_CONFIRM_FIXTURE_H_

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/broker_client.h"
#include "client/upload.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "osssim/object_store.h"
#include "osssim/sim_key.h"
#include "osssim/simulator.h"
#include "server/server.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"
#include "tests/http/raw_client.h"
#include "tests/testing/refused_port.h"
#include "tests/testing/tcp_relay.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::testing {

using ::testing::HasSubstr;

inline constexpr char kAk[] = "LTAI5tConfirmId";
inline constexpr char kSk[] = "confirm-secret";
inline constexpr char kApiKey[] = "key-app";

// Accepts TCP connections (the kernel completes the handshake) and never
// reads or answers: an OSS that hangs.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::abort();
    }
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class ConfirmE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osssim::SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials = {kAk, kSk};
    so.key_file = dir_.File("sim.key");
    auto sim = osssim::Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    auto key = osssim::SimKey::LoadOrCreate(dir_.File("sim.key"));  // the key OSS signs with
    ASSERT_TRUE(key.ok()) << key.status();
    sim_key_ = std::make_unique<osssim::SimKey>(*std::move(key));
    oss_.SetTarget(sim_->port());
  }

  void StartBroker(const std::string& callback_extra = "") {
    std::string yaml = absl::StrCat(
        "development: true\n",  // oss-sim speaks plain HTTP
        "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\", metrics_on_public_port: true}\n",
        "callback: {url: \"http://127.0.0.1:", callbacks_.port(), "/oss/callback\", trusted_key_url: \"",
        sim_->public_key_url(), "\", trusted_key_file: ",
        dir_.WriteFile("sim.pem", sim_->public_key_pem()), callback_extra, "}\n",
        "ledger: {path: ", dir_.File("ledger.db"), "}\n",
        "credentials: {access_key_id_file: ", dir_.WriteFile("ak", kAk),
        ", access_key_secret_file: ", dir_.WriteFile("sk", kSk), "}\n",
        "buckets:\n  - {name: devbucket, region: cn-hangzhou, endpoint: \"http://127.0.0.1:",
        oss_.port(), "\", path_style: true}\n",
        "callers:\n  - name: app\n    api_key_sha256: ", common::HexEncode(common::Sha256(kApiKey)),
        "\n    buckets: [devbucket]\n    key_prefixes: [uploads/]\n");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    broker_ = *std::move(s);
    callbacks_.SetTarget(broker_->http_port());
    target_ = absl::StrCat("127.0.0.1:", broker_->grpc_port());
    client_ = std::make_unique<client::BrokerClient>(target_, kApiKey);
  }

  std::string Issue(const std::string& key, bool prefix = false) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("devbucket");
    if (prefix) {
      req.set_key_prefix(key);
    } else {
      req.set_key(key);
    }
    auto resp = client_->CreatePostPolicy(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->upload_id() : "";
  }

  // An object in oss-sim's bucket, as a finished upload leaves it.
  osssim::ObjectInfo Store(const std::string& key, const std::string& data,
                           const std::string& type = "image/png") {
    auto info = osssim::ObjectStore(dir_.File("sim")).Put("devbucket", key, data, type, {});
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : osssim::ObjectInfo{};
  }

  // The same, as if written `age` ago (oss-sim's Last-Modified moved back).
  osssim::ObjectInfo StoreOld(const std::string& key, const std::string& data, absl::Duration age,
                              const std::string& type = "image/png") {
    osssim::ObjectInfo info = Store(key, data, type);
    const std::string path =
        absl::StrCat(dir_.File("sim"), "/devbucket/", common::HexEncode(key), ".json");
    std::ifstream in(path);
    nlohmann::json meta = nlohmann::json::parse(in);
    meta["last_modified"] = meta["last_modified"].get<int64_t>() - absl::ToInt64Seconds(age);
    std::ofstream(path) << meta.dump();
    return info;
  }

  static std::string Body(const std::string& id, const std::string& key, int64_t size,
                          const std::string& etag, const std::string& mime = "image/png",
                          const std::string& bucket = "devbucket") {
    return nlohmann::json{{"upload_id", id}, {"bucket", bucket}, {"object", key}, {"etag", etag},
                          {"size", size}, {"mimeType", mime}, {"crc64", "1"}, {"reqId", "R"},
                          {"operation", "PutObject"}}
        .dump();
  }

  // POSTs `body` as OSS would, signed with the simulator's callback key.
  http::Reply Post(const std::string& body) {
    std::string auth = common::Base64Encode(sim_key_->SignMd5(absl::StrCat("/oss/callback\n", body)));
    auto c = http::RawClient::Connect(broker_->http_port());
    EXPECT_NE(c, nullptr);
    if (!c) return {};
    EXPECT_TRUE(c->Send(absl::StrCat(
        "POST /oss/callback HTTP/1.1\r\nHost: broker\r\nConnection: close\r\nAuthorization: ", auth,
        "\r\nx-oss-pub-key-url: ", common::Base64Encode(sim_->public_key_url()),
        "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body)));
    return c->ReadResponse().value_or(http::Reply{});
  }

  int64_t Events(const std::string& upload_id) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(dir_.File("ledger.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events WHERE upload_id = ?1", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, upload_id.c_str(), -1, SQLITE_TRANSIENT);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  std::string Metrics() {
    auto c = http::RawClient::Connect(broker_->http_port());
    c->Send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return c->ReadResponse().value_or(http::Reply{}).body;
  }

  void ExpectRefused(const http::Reply& r, int status, const std::string& reason,
                     const std::string& message, const std::string& id) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.value("error", ""), reason) << r.body;
    EXPECT_THAT(j.value("reason", ""), HasSubstr(message));
    EXPECT_EQ(Events(id), 0);
    EXPECT_EQ(client_->GetUpload(id)->state(), v1::UPLOAD_STATE_PENDING);
  }

  static std::string Bare(const std::string& etag) { return etag.substr(1, etag.size() - 2); }

  TempDir dir_;
  std::unique_ptr<osssim::Simulator> sim_;
  std::unique_ptr<osssim::SimKey> sim_key_;
  TcpRelay oss_;        // the bucket endpoint the broker HEADs
  TcpRelay callbacks_;  // the callback URL oss-sim posts to
  std::unique_ptr<server::Server> broker_;
  std::string target_;
  std::unique_ptr<client::BrokerClient> client_;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_INGEST_CONFIRM_FIXTURE_H_
