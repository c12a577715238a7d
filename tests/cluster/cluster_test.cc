// Three broker processes on one PostgreSQL database, as the Kubernetes
// postgres overlay runs them: policies issued on one broker, OSS callbacks
// answered by the others, subscribers on every broker. Also: a broker
// killed under callback load, and the database restarted under load.
//
// What is checked is what a user sees: every callback answered 200 has
// exactly one event, every subscriber receives every event once and in the
// same order, and a subscriber that moves to another broker with its
// cursor misses nothing.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/broker_client.h"
#include "client/subscriber.h"
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

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.Start().ok());
    auto dsn = pg_.NewDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    // The same file for every broker: the single-broker tests' config with
    // the ledger on PostgreSQL.
    std::string head = testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/cb");
    const size_t at = head.find("ledger: {path: ");
    head.replace(at, head.find('\n', at) - at,
                 absl::StrCat("ledger: {postgres: {dsn_file: ", dir_.WriteFile("dsn", *dsn), "}}"));
    config_ = dir_.WriteFile("broker.yaml", absl::StrCat(head, R"(buckets: [{name: bkt, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}]
callers: [{name: app, api_key_sha256: )", common::HexEncode(common::Sha256("k")), R"(, buckets: [bkt]}]
reconcile: {enabled: false}
)"));
  }

  std::unique_ptr<BrokerProcess> StartBroker(int n) {
    return std::make_unique<BrokerProcess>(config_, dir_.File(absl::StrCat("ready", n, ".json")));
  }

  std::vector<std::string> IssuePolicies(int grpc_port, int count) {
    client::BrokerClient client(absl::StrCat("127.0.0.1:", grpc_port), "k");
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
      v1::CreatePostPolicyRequest req;
      req.set_bucket("bkt");
      req.set_key(absl::StrCat("cluster/", i));
      auto resp = client.CreatePostPolicy(req);
      EXPECT_TRUE(resp.ok()) << resp.status();
      if (resp.ok()) ids.push_back(resp->upload_id());
    }
    return ids;
  }

  std::string Callback(const std::string& id, int i) {
    std::string body = nlohmann::json{{"upload_id", id}, {"bucket", "bkt"},
                                      {"object", absl::StrCat("cluster/", i)}, {"size", i},
                                      {"etag", "\"e\""}, {"mimeType", "application/octet-stream"}}
                           .dump();
    return testing::SignedCallback(signer_, "/cb", "/cb", body);
  }

  // Sends one callback; the HTTP status, or 0 when the broker is gone.
  static int Send(int http_port, const std::string& request) {
    auto c = http::RawClient::Connect(http_port);
    if (!c || !c->Send(request)) return 0;
    auto reply = c->ReadResponse(absl::Seconds(30));
    return reply ? reply->status : 0;
  }

  // Polls GET /readyz until it answers `status` (generous deadline).
  static bool WaitForReadyz(int http_port, int status) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      if (Send(http_port, "GET /readyz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n") ==
          status) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  testing::PostgresServer pg_;
  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::string config_;
};

// Collects the events of one subscription (cursor -> upload id) until it
// has `want` of them or Stop().
class Collector {
 public:
  Collector(int grpc_port, uint64_t after) {
    client::Subscriber::Options o;
    o.target = absl::StrCat("127.0.0.1:", grpc_port);
    o.api_key = "k";
    o.initial_backoff = absl::Milliseconds(50);
    o.max_backoff = absl::Milliseconds(500);
    o.request.set_start(v1::START_POSITION_AFTER_CURSOR);
    o.request.set_after_cursor(after);
    sub_ = std::make_unique<client::Subscriber>(o);
    thread_ = std::thread([this] {
      status_ = sub_->Run([this](const v1::Event& e) {
        absl::MutexLock lock(&mu_);
        cursors_.push_back(e.cursor());
        ids_.push_back(e.upload_completed().upload().upload_id());
        return absl::OkStatus();
      });
    });
  }
  ~Collector() { Stop(); }
  bool WaitFor(size_t want, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&] { return cursors_.size() >= want; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return cursors_.size() >= want;
  }
  void Stop() {
    if (thread_.joinable()) {
      sub_->Stop();
      thread_.join();
    }
  }
  std::vector<uint64_t> cursors() {
    absl::MutexLock lock(&mu_);
    return cursors_;
  }
  std::vector<std::string> ids() {
    absl::MutexLock lock(&mu_);
    return ids_;
  }
  uint64_t acked() { return sub_->acked_cursor().value_or(0); }

 private:
  std::unique_ptr<client::Subscriber> sub_;
  std::thread thread_;
  absl::Status status_;
  absl::Mutex mu_;
  std::vector<uint64_t> cursors_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

void ExpectOneToN(const std::vector<uint64_t>& cursors, size_t n, const std::string& who) {
  ASSERT_EQ(cursors.size(), n) << who;
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(cursors[i], i + 1) << who << " at " << i;
}

TEST_F(ClusterTest, EverySubscriberOnEveryBrokerGetsEveryEventOnceInOrder) {
  constexpr int kUploads = 300;
  auto b1 = StartBroker(1);
  auto b2 = StartBroker(2);
  auto b3 = StartBroker(3);
  std::vector<std::unique_ptr<Collector>> subs;
  for (const auto* b : {b1.get(), b2.get(), b3.get()}) {
    subs.push_back(std::make_unique<Collector>(b->grpc_port, 0));
  }
  std::vector<std::string> ids = IssuePolicies(b1->grpc_port, kUploads);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kUploads));
  std::vector<std::thread> senders;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = t; i < kUploads; i += 4) {
        const int port = i % 2 == 0 ? b2->http_port : b3->http_port;
        if (Send(port, Callback(ids[i], i)) == 200) ++ok;
      }
    });
  }
  for (auto& s : senders) s.join();
  ASSERT_EQ(ok.load(), kUploads);
  for (size_t s = 0; s < subs.size(); ++s) {
    ASSERT_TRUE(subs[s]->WaitFor(kUploads, absl::Seconds(60))) << "subscriber " << s;
  }
  for (auto& s : subs) s->Stop();
  const std::vector<std::string> order = subs[0]->ids();
  EXPECT_EQ(std::set<std::string>(order.begin(), order.end()),
            std::set<std::string>(ids.begin(), ids.end()));
  for (size_t s = 0; s < subs.size(); ++s) {
    ExpectOneToN(subs[s]->cursors(), kUploads, absl::StrCat("subscriber ", s));
    EXPECT_EQ(subs[s]->ids(), order) << "subscriber " << s << " saw another order";
  }
}

TEST_F(ClusterTest, ABrokerKilledUnderLoadLosesNothingAnswered) {
  constexpr int kUploads = 1200;
  auto b1 = StartBroker(1);
  auto b2 = StartBroker(2);
  std::vector<std::string> ids = IssuePolicies(b1->grpc_port, kUploads);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kUploads));
  auto on_b2 = std::make_unique<Collector>(b2->grpc_port, 0);

  absl::Mutex mu;
  std::set<std::string> answered;
  std::atomic<int> next{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 6; ++t) {
    senders.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < kUploads;) {
        if (Send(b2->http_port, Callback(ids[i], i)) != 200) return;  // b2 is gone
        absl::MutexLock lock(&mu);
        answered.insert(ids[i]);
      }
    });
  }
  ASSERT_TRUE(on_b2->WaitFor(200, absl::Seconds(60)));
  b2->Kill(SIGKILL);
  for (auto& s : senders) s.join();
  ASSERT_LT(answered.size(), static_cast<size_t>(kUploads)) << "killed too late to prove anything";

  // The subscriber moves to another broker with its cursor.
  on_b2->Stop();
  const uint64_t resume = on_b2->acked();
  auto on_b1 = std::make_unique<Collector>(b1->grpc_port, resume);
  // OSS's callbacks for the rest now reach the surviving broker.
  std::set<std::string> answered_later;
  for (int i = 0; i < kUploads; ++i) {
    if (answered.count(ids[i])) continue;
    ASSERT_EQ(Send(b1->http_port, Callback(ids[i], i)), 200) << ids[i];
    answered_later.insert(ids[i]);
  }
  // Repeats of callbacks the dead broker answered get the first answer and
  // append nothing.
  for (int i = 0; i < 20; ++i) {
    if (answered.count(ids[i])) {
      EXPECT_EQ(Send(b1->http_port, Callback(ids[i], i)), 200);
    }
  }
  ASSERT_TRUE(on_b1->WaitFor(kUploads - resume, absl::Seconds(60)));
  on_b1->Stop();
  std::vector<uint64_t> all = on_b2->cursors();
  std::vector<uint64_t> later = on_b1->cursors();
  all.resize(resume);  // events after the acked cursor are delivered again
  all.insert(all.end(), later.begin(), later.end());
  ExpectOneToN(all, kUploads, "the moved subscriber");
  client::BrokerClient client(absl::StrCat("127.0.0.1:", b1->grpc_port), "k");
  for (const std::string& id : answered) {
    auto up = client.GetUpload(id);
    ASSERT_TRUE(up.ok()) << up.status();
    EXPECT_EQ(up->state(), v1::UPLOAD_STATE_COMPLETED) << id;
  }
  std::printf("answered 200 before the kill: %zu of %d\n", answered.size(), kUploads);
}

TEST_F(ClusterTest, ADatabaseRestartUnderLoadLosesAndDuplicatesNothing) {
  constexpr int kUploads = 800;
  auto b1 = StartBroker(1);
  auto b2 = StartBroker(2);
  std::vector<std::string> ids = IssuePolicies(b1->grpc_port, kUploads);
  ASSERT_EQ(ids.size(), static_cast<size_t>(kUploads));
  absl::Mutex mu;
  std::map<std::string, int> first_status;
  std::atomic<int> next{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i; (i = next.fetch_add(1)) < kUploads;) {
        int status = Send(t % 2 ? b1->http_port : b2->http_port, Callback(ids[i], i));
        if (status == 200) ++ok;
        absl::MutexLock lock(&mu);
        first_status[ids[i]] = status;
      }
    });
  }
  // Stop the database under load, keep it down until the brokers have
  // refused a callback for it (or every callback has been sent), then
  // bring it back: each step waits for the event it needs, with a deadline.
  auto done = [&] {
    return static_cast<int>(first_status.size()) == kUploads;
  };
  mu.Lock();
  const bool loaded = mu.AwaitWithTimeout(
      absl::Condition(+[](std::atomic<int>* n) { return n->load() >= 150; }, &ok), absl::Seconds(60));
  mu.Unlock();
  const bool stopped = loaded && pg_.Stop("fast").ok();
  if (stopped) {
    absl::MutexLock lock(&mu);
    auto refused_or_done = [&] {
      if (done()) return true;
      for (const auto& [id, status] : first_status) {
        if (status != 200) return true;
      }
      return false;
    };
    mu.AwaitWithTimeout(absl::Condition(&refused_or_done), absl::Seconds(60));
  }
  if (stopped) {
    // While the database is away: not ready, and the API says UNAVAILABLE.
    EXPECT_TRUE(WaitForReadyz(b1->http_port, 503)) << "/readyz never answered 503";
    client::BrokerClient api(absl::StrCat("127.0.0.1:", b1->grpc_port), "k");
    v1::CreatePostPolicyRequest req;
    req.set_bucket("bkt");
    req.set_key("cluster/during-outage");
    EXPECT_EQ(api.CreatePostPolicy(req).status().code(), absl::StatusCode::kUnavailable);
  }
  const bool restarted = pg_.Start().ok();
  if (restarted) {
    EXPECT_TRUE(WaitForReadyz(b1->http_port, 200)) << "/readyz never recovered";
  }
  for (auto& s : senders) s.join();
  ASSERT_TRUE(loaded) << "fewer than 150 callbacks answered 200 within 60 s";
  ASSERT_TRUE(stopped);
  ASSERT_TRUE(restarted);
  int refused = 0;
  for (auto& [id, status] : first_status) {
    EXPECT_TRUE(status == 200 || status == 503) << id << " got " << status;
    refused += status != 200;
  }
  // OSS does not retry; here the callbacks refused during the outage are
  // sent again once the brokers recovered by themselves.
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  for (int i = 0; i < kUploads; ++i) {
    if (first_status[ids[i]] == 200) continue;
    int status = 0;
    while ((status = Send(b2->http_port, Callback(ids[i], i))) != 200 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    ASSERT_EQ(status, 200) << "brokers did not recover: " << ids[i];
  }
  Collector all(b1->grpc_port, 0);
  ASSERT_TRUE(all.WaitFor(kUploads, absl::Seconds(60)));
  all.Stop();
  ExpectOneToN(all.cursors(), kUploads, "a subscriber from the start");
  std::vector<std::string> got = all.ids();
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), static_cast<size_t>(kUploads));
  std::printf("callbacks refused with 503 during the restart: %d of %d\n", refused, kUploads);
}

}  // namespace
}  // namespace uploadbroker
