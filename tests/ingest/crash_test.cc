// Durability under kill -9, for every ledger engine: the broker process is
// killed while OSS callbacks stream in and authorizations are being issued,
// at several points (after 10%, 50% and 90% of the callbacks were answered).
// After a restart on the same ledger, read back only through the broker's
// gRPC API, so one check serves SQLite and PostgreSQL:
//
// - every reply received before the kill was 200 (a 5xx under load would be
//   a bug, not an acceptable loss);
// - every authorization answered before the kill is there (GetUpload);
// - a callback repeated after the restart is answered 200 with the same
//   body the first answer had, and appends nothing;
// - the event log holds exactly one UploadCompleted event for each callback
//   answered 200 or cut off by the kill (and retried), with the contents of
//   that callback, and nothing else; cursors are gap-free.
#include <signal.h>

#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_process.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using testing::BrokerProcess;

enum class Engine { kSqlite, kPostgres };

struct CrashCase {
  Engine engine;
  int kill_percent;  // SIGKILL once this share of the callbacks was answered
};

// Keeps ctest's names short ("# GetParam() = sqlite, 10%").
void PrintTo(const CrashCase& c, std::ostream* os) {
  *os << (c.engine == Engine::kSqlite ? "sqlite" : "postgres") << ", " << c.kill_percent << "%";
}

std::string CaseName(const ::testing::TestParamInfo<CrashCase>& info) {
  return absl::StrCat(info.param.engine == Engine::kSqlite ? "Sqlite" : "Postgres", "At",
                      info.param.kill_percent, "Percent");
}

constexpr int kIntents = 2000;
constexpr int kSenders = 8;
// Generous: the machine running the suite may be busy.
constexpr absl::Duration kReplyTimeout = absl::Seconds(30);

std::string Key(int i) { return absl::StrCat("crash/", i); }

class CrashTest : public ::testing::TestWithParam<CrashCase> {
 protected:
  // One PostgreSQL server for the suite; each test gets a fresh database.
  static void SetUpTestSuite() { pg_ = new testing::PostgresServer; }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  void SetUp() override {
    std::string head = testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/cb");
    if (GetParam().engine == Engine::kPostgres) {
      if (testing::PostgresServer::BinDir().empty()) {
        GTEST_SKIP() << "PostgreSQL is not installed (scripts/install-deps.sh installs it)";
      }
      if (!pg_started_) {
        absl::Status started = pg_->Start();
        ASSERT_TRUE(started.ok()) << started;
        pg_started_ = true;
      }
      auto dsn = pg_->NewDatabase();
      ASSERT_TRUE(dsn.ok()) << dsn.status();
      const size_t at = head.find("ledger: {path: ");
      head.replace(at, head.find('\n', at) - at,
                   absl::StrCat("ledger: {postgres: {dsn_file: ", dir_.WriteFile("dsn", *dsn), "}}"));
    }
    config_ = dir_.WriteFile("broker.yaml", absl::StrCat(head, R"(buckets: [{name: bkt, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}]
callers: [{name: app, api_key_sha256: )", common::HexEncode(common::Sha256("k")), R"(, buckets: [bkt]}]
reconcile: {enabled: false}
)"));
  }

  std::unique_ptr<BrokerProcess> Start(const std::string& name) {
    return std::make_unique<BrokerProcess>(config_, dir_.File(name));
  }

  std::string Callback(const std::string& id, int i) const {
    std::string body = nlohmann::json{{"upload_id", id}, {"bucket", "bkt"}, {"object", Key(i)},
                                      {"size", i}, {"etag", absl::StrCat("\"etag-", i, "\"")},
                                      {"mimeType", "application/octet-stream"}}
                           .dump();
    return testing::SignedCallback(signer_, "/cb", "/cb", body);
  }

  // Issues intents for keys [from, to) from `threads` threads.
  static std::vector<std::string> Issue(int grpc_port, int from, int to, int threads) {
    std::vector<std::string> ids(to - from);
    std::atomic<int> next{from};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        client::BrokerClient client(absl::StrCat("127.0.0.1:", grpc_port), "k");
        for (int i; (i = next.fetch_add(1)) < to;) {
          v1::CreatePostPolicyRequest req;
          req.set_bucket("bkt");
          req.set_key(Key(i));
          auto resp = client.CreatePostPolicy(req);
          EXPECT_TRUE(resp.ok()) << resp.status();
          if (resp.ok()) ids[i - from] = resp->upload_id();
        }
      });
    }
    for (auto& w : workers) w.join();
    return ids;
  }

  static inline testing::PostgresServer* pg_ = nullptr;
  static inline bool pg_started_ = false;
  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::string config_;
};

// What the senders saw before the kill.
struct Outcome {
  absl::Mutex mu;
  int ok ABSL_GUARDED_BY(mu) = 0;
  std::map<int, std::string> answered ABSL_GUARDED_BY(mu);  // index -> 200 body
  std::set<int> cut_off ABSL_GUARDED_BY(mu);                // sent, no reply
  std::vector<std::string> other ABSL_GUARDED_BY(mu);       // non-200 replies
  std::vector<std::string> authorized ABSL_GUARDED_BY(mu);  // answered CreatePostPolicy
};

TEST_P(CrashTest, EveryAcknowledgementSurvivesAKill) {
  const int kill_after = kIntents * GetParam().kill_percent / 100;
  std::vector<std::string> ids;
  auto broker = Start("ready1.json");
  ids = Issue(broker->grpc_port, 0, kIntents, 4);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kIntents));

  Outcome out;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kSenders; ++t) {
    threads.emplace_back([&, port = broker->http_port] {
      for (int i; (i = next.fetch_add(1)) < kIntents;) {
        auto c = http::RawClient::Connect(port);
        if (!c) return;  // the broker is gone
        const bool sent = c->Send(Callback(ids[i], i));
        auto reply = c->ReadResponse(kReplyTimeout);
        absl::MutexLock lock(&out.mu);
        if (!reply) {
          out.cut_off.insert(i);  // may or may not have been committed
          return;
        }
        if (sent && reply->status == 200) {
          ++out.ok;
          out.answered[i] = reply->body;
        } else {
          out.other.push_back(absl::StrCat(ids[i], ": ", reply->status, " ", reply->body));
        }
      }
    });
  }
  // Authorizations issued while the callbacks stream in, until the kill.
  std::atomic<bool> killed{false};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t, port = broker->grpc_port] {
      client::BrokerClient client(absl::StrCat("127.0.0.1:", port), "k");
      for (int n = 0; !killed.load(); ++n) {
        v1::CreatePostPolicyRequest req;
        req.set_bucket("bkt");
        req.set_key(absl::StrCat("during/", t, "/", n));
        auto resp = client.CreatePostPolicy(req);
        if (!resp.ok()) return;
        absl::MutexLock lock(&out.mu);
        out.authorized.push_back(resp->upload_id());
      }
    });
  }
  bool reached = false;
  {
    absl::MutexLock lock(&out.mu);
    auto enough = [&] { return out.ok >= kill_after || !out.other.empty(); };
    reached = out.mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
  }
  broker->Kill(SIGKILL);
  killed = true;
  for (auto& t : threads) t.join();

  absl::MutexLock lock(&out.mu);
  ASSERT_TRUE(reached) << "only " << out.ok << " callbacks answered 200 within 60 s";
  EXPECT_TRUE(out.other.empty()) << "answers other than 200 before the kill, first: "
                                 << out.other.front();
  ASSERT_GE(out.ok, kill_after);
  ASSERT_LT(out.ok, kIntents) << "killed too late to prove anything";
  EXPECT_LE(out.cut_off.size(), static_cast<size_t>(kSenders));

  // Restart on the same ledger: recovery must succeed.
  broker = Start("ready2.json");
  client::BrokerClient client(absl::StrCat("127.0.0.1:", broker->grpc_port), "k");
  for (const std::string& id : out.authorized) {
    auto up = client.GetUpload(id);
    ASSERT_TRUE(up.ok()) << "authorization " << id << " answered before the kill: " << up.status();
    EXPECT_EQ(up->state(), v1::UPLOAD_STATE_PENDING) << id;
  }

  auto send = [&](int i) -> std::optional<http::Reply> {
    auto c = http::RawClient::Connect(broker->http_port);
    if (!c || !c->Send(Callback(ids[i], i))) return std::nullopt;
    return c->ReadResponse(kReplyTimeout);
  };
  // Repeats of answered callbacks (every tenth, and the last ones) get the
  // first answer byte for byte.
  int repeated = 0;
  size_t n = 0;
  for (auto it = out.answered.begin(); it != out.answered.end(); ++it, ++n) {
    if (it->first % 10 != 0 && n + 5 < out.answered.size()) continue;
    auto reply = send(it->first);
    ASSERT_TRUE(reply.has_value()) << ids[it->first];
    EXPECT_EQ(reply->status, 200) << ids[it->first] << ": " << reply->body;
    EXPECT_EQ(reply->body, it->second) << ids[it->first];
    ++repeated;
  }
  // OSS would not retry the cut-off ones, but a retry must complete them
  // exactly once whether or not the kill came before their commit.
  for (int i : out.cut_off) {
    auto reply = send(i);
    ASSERT_TRUE(reply.has_value()) << ids[i];
    EXPECT_EQ(reply->status, 200) << ids[i] << ": " << reply->body;
  }
  // A fresh upload's event marks the end of the log for the reader below.
  std::vector<std::string> fresh = Issue(broker->grpc_port, kIntents, kIntents + 1, 1);
  ASSERT_EQ(fresh.size(), 1u);
  ids.push_back(fresh[0]);
  auto last = send(kIntents);
  ASSERT_TRUE(last.has_value());
  ASSERT_EQ(last->status, 200) << last->body;

  // Read the whole log through Subscribe until the end marker.
  std::map<std::string, int> index;
  for (int i = 0; i <= kIntents; ++i) index[ids[i]] = i;
  std::vector<v1::Event> events;
  {
    grpc::ClientContext ctx;
    client.Prepare(&ctx, /*with_deadline=*/false);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::SubscribeRequest req;
    req.set_start(v1::START_POSITION_EARLIEST);
    req.set_max_events_per_message(1000);
    auto reader = client.stub().Subscribe(&ctx, req);
    v1::SubscribeResponse msg;
    bool at_end = false;
    while (!at_end && reader->Read(&msg)) {
      if (msg.has_event()) events.push_back(msg.event());
      for (const v1::Event& e : msg.events()) events.push_back(e);
      at_end = !events.empty() &&
               events.back().upload_completed().upload().upload_id() == fresh[0];
    }
    ctx.TryCancel();
    ASSERT_TRUE(at_end) << "the end marker's event did not arrive within 60 s: "
                        << reader->Finish().error_message();
  }
  std::set<int> expected;
  for (const auto& [i, body] : out.answered) expected.insert(i);
  expected.insert(out.cut_off.begin(), out.cut_off.end());
  expected.insert(kIntents);
  std::set<int> seen;
  for (size_t n = 0; n < events.size(); ++n) {
    const v1::Event& e = events[n];
    if (n > 0) {
      ASSERT_EQ(e.cursor(), events[n - 1].cursor() + 1) << "cursor gap at event " << n;
    }
    ASSERT_EQ(e.type(), v1::EVENT_TYPE_UPLOAD_COMPLETED) << e.DebugString();
    const v1::Upload& up = e.upload_completed().upload();
    auto found = index.find(up.upload_id());
    ASSERT_NE(found, index.end()) << "event for an upload no callback was sent for: " << e.DebugString();
    const int i = found->second;
    EXPECT_TRUE(seen.insert(i).second) << "second event for " << up.upload_id();
    EXPECT_TRUE(expected.count(i)) << "event for a callback never answered: " << up.upload_id();
    EXPECT_EQ(up.state(), v1::UPLOAD_STATE_COMPLETED);
    EXPECT_EQ(up.caller(), "app");
    EXPECT_EQ(up.bucket(), "bkt");
    EXPECT_EQ(up.key(), Key(i));
    EXPECT_EQ(up.completion().key(), Key(i));
    EXPECT_EQ(up.completion().size(), i);
    EXPECT_EQ(up.completion().etag(), absl::StrCat("\"etag-", i, "\""));
    EXPECT_EQ(up.completion().source(), v1::COMPLETION_SOURCE_CALLBACK);
  }
  EXPECT_EQ(seen, expected) << "answered callbacks without an event";
  // Uploads no callback reached stay PENDING.
  for (int i = kIntents - 1; i >= 0 && i >= kIntents - 20; --i) {
    if (expected.count(i)) continue;
    auto up = client.GetUpload(ids[i]);
    ASSERT_TRUE(up.ok()) << up.status();
    EXPECT_EQ(up->state(), v1::UPLOAD_STATE_PENDING) << ids[i];
  }
  std::printf("answered 200 before the kill: %d of %d, cut off: %zu, authorizations: %zu, "
              "repeated: %d, events: %zu\n",
              out.ok, kIntents, out.cut_off.size(), out.authorized.size(), repeated, events.size());
}

INSTANTIATE_TEST_SUITE_P(KillPoints, CrashTest,
                         ::testing::Values(CrashCase{Engine::kSqlite, 10}, CrashCase{Engine::kSqlite, 50},
                                           CrashCase{Engine::kSqlite, 90}, CrashCase{Engine::kPostgres, 10},
                                           CrashCase{Engine::kPostgres, 50},
                                           CrashCase{Engine::kPostgres, 90}),
                         CaseName);

}  // namespace
}  // namespace uploadbroker
