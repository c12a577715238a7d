// Durability under kill -9: the broker process is killed while callbacks
// stream in. After a restart, every callback that was answered 200 has
// exactly one event and a COMPLETED intent; no callback left a half-written
// record (COMPLETED without its event, or an event without COMPLETED).
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_process.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using testing::BrokerProcess;

TEST(CrashTest, NothingAnsweredIsLostAndNothingIsHalfWritten) {
  testing::TempDir dir;
  callback::TestSigner signer;
  std::string config = dir.WriteFile("broker.yaml", absl::StrCat(
      testing::BrokerYamlHead(dir, signer, "https://broker.example.com/cb"), R"(
buckets: [{name: bkt, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}]
callers: [{name: app, api_key_sha256: )", common::HexEncode(common::Sha256("k")), R"(, buckets: [bkt]}]
)"));
  std::string ready = dir.File("ready.json");

  constexpr int kIntents = 3000;
  std::vector<std::string> ids;
  std::vector<std::string> requests;
  {
    BrokerProcess broker(config, ready);
    client::BrokerClient client(absl::StrCat("127.0.0.1:", broker.grpc_port), "k");
    for (int i = 0; i < kIntents; ++i) {
      v1::CreatePostPolicyRequest req;
      req.set_bucket("bkt");
      req.set_key(absl::StrCat("crash/", i));
      auto resp = client.CreatePostPolicy(req);
      ASSERT_TRUE(resp.ok()) << resp.status();
      ids.push_back(resp->upload_id());
    }
  }
  for (int i = 0; i < kIntents; ++i) {
    std::string body = nlohmann::json{{"upload_id", ids[i]}, {"bucket", "bkt"},
                                      {"object", absl::StrCat("crash/", i)}, {"size", i},
                                      {"etag", "\"e\""}, {"mimeType", "application/octet-stream"}}
                           .dump();
    requests.push_back(testing::SignedCallback(signer, "/cb", "/cb", body));
  }

  BrokerProcess broker(config, ready);
  absl::Mutex mu;
  std::set<std::string> answered;
  std::atomic<int> next{0};
  std::atomic<int> ok_count{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 8; ++t) {
    senders.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < kIntents;) {
        auto c = http::RawClient::Connect(broker.http_port);
        if (!c || !c->Send(requests[i])) return;  // the broker is gone
        auto reply = c->ReadResponse(absl::Seconds(5));
        if (!reply) return;
        if (reply->status == 200) {
          absl::MutexLock lock(&mu);
          answered.insert(ids[i]);
          ok_count++;
        }
      }
    });
  }
  while (ok_count.load() < 500) std::this_thread::yield();
  broker.Kill(SIGKILL);
  for (auto& t : senders) t.join();
  ASSERT_GE(answered.size(), 500u);
  ASSERT_LT(answered.size(), static_cast<size_t>(kIntents)) << "killed too late to prove anything";

  // Restart on the same file: recovery must succeed, then inspect.
  BrokerProcess restarted(config, ready);
  client::BrokerClient client(absl::StrCat("127.0.0.1:", restarted.grpc_port), "k");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.File("ledger.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT i.upload_id, i.state, (SELECT COUNT(*) FROM events e WHERE e.upload_id = i.upload_id) "
                     "FROM intents i",
                     -1, &st, nullptr);
  int completed = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string id = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    int state = sqlite3_column_int(st, 1);
    int events = sqlite3_column_int(st, 2);
    bool is_completed = state == v1::UPLOAD_STATE_COMPLETED;
    completed += is_completed;
    EXPECT_EQ(events, is_completed ? 1 : 0) << id << " state " << state;
    if (answered.count(id)) {
      EXPECT_TRUE(is_completed) << id << " was answered 200 but is not completed";
    }
  }
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT COUNT(*), IFNULL(MAX(cursor) - MIN(cursor) + 1, 0) FROM events", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), completed);
  EXPECT_EQ(sqlite3_column_int(st, 1), completed) << "cursors are not gap-free";
  sqlite3_finalize(st);
  sqlite3_close(db);
  // The restarted broker serves what was acknowledged.
  auto up = client.GetUpload(*answered.begin());
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->state(), v1::UPLOAD_STATE_COMPLETED);
  std::printf("answered 200 before the kill: %zu; completed after restart: %d of %d\n",
              answered.size(), completed, kIntents);
}

}  // namespace
}  // namespace uploadbroker
