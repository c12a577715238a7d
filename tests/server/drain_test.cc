// The whole broker's drain (server::Server::Shutdown): callbacks already
// handed to the ledger when the drain begins are committed and answered 200
// before the broker stops; new connections are refused from its start.
#include <sqlite3.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

// The value of a metric line `name ` in /metrics, or -1.
double Metric(int http_port, const std::string& name) {
  auto c = http::RawClient::Connect(http_port);
  if (!c || !c->Send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) return -1;
  auto reply = c->ReadResponse(absl::Seconds(30));
  if (!reply) return -1;
  const std::string prefix = name + " ";
  size_t at = reply->body.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::stod(reply->body.substr(at + 1 + prefix.size()));
}

TEST(BrokerDrainTest, CallbacksInFlightWhenTheDrainBeginsAreCommittedAndAnswered) {
  testing::TempDir dir;
  callback::TestSigner signer;
  std::string yaml = absl::StrCat(
      testing::BrokerYamlHead(dir, signer, "https://broker.example.com/cb"),
      "buckets: [{name: bkt, region: cn-hangzhou, endpoint: \"https://oss-cn-hangzhou.aliyuncs.com\"}]\n",
      "callers: [{name: app, api_key_sha256: ", common::HexEncode(common::Sha256("k")),
      ", buckets: [bkt]}]\nreconcile: {enabled: false}\n");
  server::Options opts;
  auto config = config::LoadConfig(dir.WriteFile("broker.yaml", yaml));
  ASSERT_TRUE(config.ok()) << config.status();
  opts.config = *std::move(config);
  auto broker = server::Server::Create(opts);
  ASSERT_TRUE(broker.ok()) << broker.status();
  const int http_port = (*broker)->http_port();
  client::BrokerClient client(absl::StrCat("127.0.0.1:", (*broker)->grpc_port()), "k");
  constexpr int kInFlight = 3;
  std::vector<std::string> ids;
  for (int i = 0; i < kInFlight; ++i) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("bkt");
    req.set_key(absl::StrCat("drain/", i));
    auto resp = client.CreatePostPolicy(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    ids.push_back(resp->upload_id());
  }

  // Another process holds the ledger's write lock, so the callbacks below
  // stay in flight (verified, waiting for their commit) until it lets go.
  // The ledger waits up to its busy timeout (5 s) for the lock; the steps
  // until the ROLLBACK below are local and take milliseconds.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("ledger.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::vector<std::unique_ptr<http::RawClient>> conns;
  for (int i = 0; i < kInFlight; ++i) {
    std::string body = nlohmann::json{{"upload_id", ids[i]}, {"bucket", "bkt"},
                                      {"object", absl::StrCat("drain/", i)}, {"size", 1},
                                      {"etag", "\"e\""}}
                           .dump();
    conns.push_back(http::RawClient::Connect(http_port));
    ASSERT_NE(conns.back(), nullptr);
    ASSERT_TRUE(conns.back()->Send(testing::SignedCallback(signer, "/cb", "/cb", body)));
  }
  // Each verified callback is handed to the ledger at once: wait until all
  // of them were verified.
  const absl::Time deadline = absl::Now() + absl::Seconds(4);
  while (Metric(http_port, "upload_broker_callback_verify_seconds_count") < kInFlight &&
         absl::Now() < deadline) {
  }
  ASSERT_EQ(Metric(http_port, "upload_broker_callback_verify_seconds_count"), kInFlight);

  std::thread drain([&] { (*broker)->Shutdown(); });
  // The drain has begun once the listener refuses new connections.
  bool refused = false;
  while (!refused && absl::Now() < deadline) refused = http::RawClient::Connect(http_port) == nullptr;
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);

  std::vector<http::Reply> replies;
  for (auto& c : conns) replies.push_back(c->ReadResponse(absl::Seconds(60)).value_or(http::Reply{}));
  drain.join();
  EXPECT_TRUE(refused) << "the listener still accepted connections while draining";
  for (int i = 0; i < kInFlight; ++i) {
    EXPECT_EQ(replies[i].status, 200) << ids[i] << ": " << replies[i].body;
    EXPECT_EQ(replies[i].Header("Connection").value_or(""), "close");
    EXPECT_EQ(nlohmann::json::parse(replies[i].body, nullptr, false).value("upload_id", ""), ids[i]);
  }
  broker->reset();

  // Committed, each with its one event.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.File("ledger.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(DISTINCT upload_id), COUNT(*) FROM events", -1, &st,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), kInFlight);
  EXPECT_EQ(sqlite3_column_int(st, 1), kInFlight);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

}  // namespace
}  // namespace uploadbroker
