// A NATS JetStream push target through kill -9 of the broker driving it:
// uploads complete while the broker publishes their events to a real
// `nats-server -js`; the broker is killed mid-way and restarted on the same
// ledger, the callbacks not yet answered are sent again. The stream must
// then hold every completion exactly once: retries the broker makes after
// the restart for events whose PubAck it never recorded carry the same
// Nats-Msg-Id and are dropped by the stream's duplicate window.
#include <signal.h>

#include <atomic>
#include <iostream>
#include <map>
#include <regex>
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
#include "tests/deliver/nats_stream.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_process.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/http_get.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

constexpr int kUploads = 400;
constexpr int kSenders = 4;
constexpr char kStream[] = "UPLOADS";

std::string Key(int i) { return absl::StrCat("nats-kill/", i); }

class NatsKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = nats_.Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(stream_.Connect(nats_.url()).ok());
    // The window covers the restart and the retry schedule's first delays.
    ASSERT_TRUE(stream_.AddStream(kStream, "uploads.>", absl::Minutes(30)).ok());
    config_ = dir_.WriteFile("broker.yaml", Config(nats_.url()));
  }

  std::string Config(const std::string& nats_url) {
    return absl::StrCat(testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/cb"),
                        R"(buckets: [{name: bkt, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}]
callers: [{name: app, api_key_sha256: )",
                        common::HexEncode(common::Sha256("k")), R"(, buckets: [bkt]}]
reconcile: {enabled: false}
deliveries:
  targets:
    - name: bus
      caller: app
      nats: {url: ")",
                        nats_url, R"(", subject: uploads.events, stream: UPLOADS, timeout: 2s}
)");
  }

  std::unique_ptr<testing::BrokerProcess> Start(const std::string& name) {
    return std::make_unique<testing::BrokerProcess>(config_, dir_.File(name));
  }

  std::string Callback(const std::string& id, int i) const {
    std::string body = nlohmann::json{{"upload_id", id}, {"bucket", "bkt"}, {"object", Key(i)},
                                      {"size", i}, {"etag", absl::StrCat("\"etag-", i, "\"")},
                                      {"mimeType", "application/octet-stream"}}
                           .dump();
    return testing::SignedCallback(signer_, "/cb", "/cb", body);
  }

  // Waits until the stream holds `n` messages (at most `deadline`), looking
  // every `every`.
  uint64_t WaitForStream(uint64_t n, absl::Duration deadline,
                         absl::Duration every = absl::Milliseconds(100)) {
    const absl::Time until = absl::Now() + deadline;
    uint64_t count = 0;
    while (absl::Now() < until) {
      count = stream_.Count(kStream).value_or(0);
      if (count >= n) break;
      absl::SleepFor(every);
    }
    return count;
  }

  testing::NatsServer nats_;
  testing::JetStreamClient stream_;
  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::string config_;
};

TEST_F(NatsKillTest, StreamHoldsEveryCompletionExactlyOnceThroughAKill) {
  auto broker = Start("ready1.json");
  std::vector<std::string> ids(kUploads);
  {
    client::BrokerClient client(absl::StrCat("127.0.0.1:", broker->grpc_port), "k");
    for (int i = 0; i < kUploads; ++i) {
      v1::CreatePostPolicyRequest req;
      req.set_bucket("bkt");
      req.set_key(Key(i));
      auto resp = client.CreatePostPolicy(req);
      ASSERT_TRUE(resp.ok()) << resp.status();
      ids[i] = resp->upload_id();
    }
  }

  // Callbacks stream in; the broker is killed once the stream holds a
  // third of them, while it is publishing the rest.
  absl::Mutex mu;
  std::set<int> answered;  // 200 before the kill
  std::atomic<int> next{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < kSenders; ++t) {
    senders.emplace_back([&, port = broker->http_port] {
      for (int i; !stop.load() && (i = next.fetch_add(1)) < kUploads;) {
        auto c = http::RawClient::Connect(port);
        if (!c || !c->Send(Callback(ids[i], i))) return;
        auto reply = c->ReadResponse(absl::Seconds(30));
        if (!reply) return;
        if (reply->status == 200) {
          absl::MutexLock l(&mu);
          answered.insert(i);
        }
      }
    });
  }
  // Looked at often, so the kill lands while publishes are in flight.
  const uint64_t before_kill = WaitForStream(kUploads / 3, absl::Seconds(60), absl::Milliseconds(2));
  broker->Kill(SIGKILL);
  stop = true;
  for (auto& s : senders) s.join();
  ASSERT_GE(before_kill, static_cast<uint64_t>(kUploads / 3)) << "deliveries did not start";
  {
    absl::MutexLock l(&mu);
    ASSERT_LT(answered.size(), static_cast<size_t>(kUploads)) << "killed too late to prove anything";
  }

  // Restart on the same ledger and complete every upload (a callback that
  // was answered or cut off is answered 200 again and appends nothing).
  broker = Start("ready2.json");
  const uint64_t at_restart = stream_.Count(kStream).value_or(0);
  for (int i = 0; i < kUploads; ++i) {
    auto c = http::RawClient::Connect(broker->http_port);
    ASSERT_TRUE(c && c->Send(Callback(ids[i], i))) << i;
    auto reply = c->ReadResponse(absl::Seconds(30));
    ASSERT_TRUE(reply.has_value()) << i;
    ASSERT_EQ(reply->status, 200) << ids[i] << ": " << reply->body;
  }

  // The restarted broker takes the target over once the dead one's lease
  // runs out, and delivers what was not acknowledged.
  const uint64_t count = WaitForStream(kUploads, absl::Seconds(90));
  absl::SleepFor(absl::Seconds(3));  // anything extra would show up by now
  absl::StatusOr<std::vector<testing::StoredMessage>> stored = stream_.Messages(kStream);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(count, static_cast<uint64_t>(kUploads));
  std::map<std::string, int> seen;
  for (const testing::StoredMessage& m : *stored) ++seen[m.headers.at("Nats-Msg-Id")];
  std::set<std::string> want;
  for (const std::string& id : ids) want.insert(id + ".completed");
  std::set<std::string> got;
  for (const auto& [id, n] : seen) {
    got.insert(id);
    EXPECT_EQ(n, 1) << id << " stored " << n << " times";
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(stored->size(), static_cast<size_t>(kUploads));

  // For the log: how many PubAcks the restarted broker got against how many
  // messages the stream gained; more acks than new messages means retries of
  // events the killed broker had already published were dropped as
  // duplicates (the case this test is about; it depends on what was in
  // flight at the kill, so it is reported, not required).
  const std::string metrics = testing::HttpGet(absl::StrCat("http://127.0.0.1:", broker->http_port, "/metrics"));
  std::smatch m;
  static const std::regex kDelivered(
      R"re(upload_broker_target_attempts_total\{[^}]*result="delivered"[^}]*\} (\d+))re");
  const std::string acks = std::regex_search(metrics, m, kDelivered) ? m[1].str() : "?";
  std::cout << "stream at kill >= " << before_kill << ", at restart " << at_restart
            << "; restarted broker: " << acks << " PubAcks for " << (kUploads - at_restart)
            << " new messages\n";
}

TEST_F(NatsKillTest, BrokerRefusesToStartWithANatsTargetItCannotBuild) {
  const std::string config = dir_.WriteFile("bad.yaml", Config("tls://127.0.0.1:4222"));
  testing::Exited e = testing::Subprocess::Run({UB_BROKER_BIN, "--config", config});
  EXPECT_NE(e.code, 0);
  EXPECT_NE((e.out + e.err).find("deliveries.targets[0].nats.url (server 1): tls:// is not supported "
                                 "by the NATS target yet (nats:// only)"),
            std::string::npos)
      << e.out << e.err;
}

}  // namespace
}  // namespace uploadbroker
