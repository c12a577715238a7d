// Competing consumers on one durable subscription, as a backend with two
// replicas runs them: completions arrive under load while two Consume
// streams share the subscription; one consumer dies mid-way holding events
// it never acknowledged. What a user must see: every event acknowledged
// exactly once in total, none lost, and the events delivered again are
// exactly the ones the dead consumer held unacknowledged (each on its
// second attempt).
//
// PostgreSQL: two broker processes on one database, one consumer on each.
// SQLite: one broker process (a SQLite ledger has one broker), both
// consumers on it. Labelled "large" (tens of seconds): ctest -L large.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "tests/rpc/consume_fixture.h"
#include "tests/testing/broker_process.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using testing::BrokerProcess;

constexpr int kEvents = 10000;
constexpr uint32_t kInFlight = 16;
constexpr int kKillAfterAcks = 300;

struct Ledger {
  bool postgres;
};

class ConsumeContractTest : public ::testing::TestWithParam<Ledger> {
 protected:
  void SetUp() override {
    std::string head = testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/cb");
    if (GetParam().postgres) {
      ASSERT_TRUE(pg_.Start().ok());
      auto dsn = pg_.NewDatabase();
      ASSERT_TRUE(dsn.ok()) << dsn.status();
      const size_t at = head.find("ledger: {path: ");
      head.replace(at, head.find('\n', at) - at,
                   absl::StrCat("ledger: {postgres: {dsn_file: ", dir_.WriteFile("dsn", *dsn),
                                "}}"));
    }
    config_ = dir_.WriteFile("broker.yaml", absl::StrCat(head, R"(buckets: [{name: bkt, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}]
callers: [{name: app, api_key_sha256: )", common::HexEncode(common::Sha256("k")), R"(, buckets: [bkt]}]
reconcile: {enabled: false}
)"));
  }

  std::unique_ptr<BrokerProcess> StartBroker(int n) {
    return std::make_unique<BrokerProcess>(config_, dir_.File(absl::StrCat("ready", n, ".json")));
  }

  testing::PostgresServer pg_;
  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::string config_;
};

// What every consumer saw, shared by the test.
struct Ledgerbook {
  absl::Mutex mu;
  std::map<uint64_t, int> acks;                        // cursor -> acks sent
  std::map<uint64_t, std::vector<uint32_t>> attempts;  // cursor -> attempts delivered
  int64_t acked_distinct() {
    absl::MutexLock lock(&mu);
    return static_cast<int64_t>(acks.size());
  }
};

// Reads deliveries and acks them; with `die_after` > 0, stops acking after
// that many acks, waits until it holds kInFlight unacknowledged events (or
// nothing more comes), then drops the stream: a consumer crash.
void RunConsumer(testing::ConsumeStream& stream, Ledgerbook& book, int die_after,
                 std::set<uint64_t>* held) {
  int acked = 0;
  std::set<uint64_t> unacked;
  for (;;) {
    std::vector<v1::Delivery> got = stream.Next();
    if (got.empty()) break;
    std::vector<uint64_t> to_ack;
    {
      absl::MutexLock lock(&book.mu);
      for (const v1::Delivery& d : got) {
        book.attempts[d.cursor()].push_back(d.attempt());
        if (die_after > 0 && acked >= die_after) {
          unacked.insert(d.cursor());
        } else {
          ++book.acks[d.cursor()];
          to_ack.push_back(d.cursor());
          ++acked;
        }
      }
    }
    if (!to_ack.empty()) stream.Ack(to_ack);
    if (die_after > 0 && unacked.size() >= kInFlight) break;
  }
  if (die_after > 0) {
    // Nothing more can come (no room); a little time for anything in flight.
    absl::SleepFor(absl::Milliseconds(300));
    *held = unacked;
  }
  stream.Cancel();
}

TEST_P(ConsumeContractTest, EveryEventIsAcknowledgedOnceAndOnlyTheUnackedAreRedelivered) {
  auto b1 = StartBroker(1);
  std::unique_ptr<BrokerProcess> b2 = GetParam().postgres ? StartBroker(2) : nullptr;
  const int port1 = b1->grpc_port;
  const int port2 = b2 ? b2->grpc_port : b1->grpc_port;
  const int http1 = b1->http_port;
  const int http2 = b2 ? b2->http_port : b1->http_port;
  {
    client::BrokerClient admin(absl::StrCat("127.0.0.1:", port1), "k");
    grpc::ClientContext ctx;
    admin.Prepare(&ctx);
    v1::CreateSubscriptionRequest req;
    req.set_name("work");
    req.set_ack_deadline_seconds(60);  // no lease runs out in this test
    v1::CreateSubscriptionResponse resp;
    grpc::Status st = admin.stub().CreateSubscription(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  Ledgerbook book;
  std::set<uint64_t> held_by_dead;
  testing::ConsumeStream first(absl::StrCat("127.0.0.1:", port1), "k", "work", kInFlight);
  testing::ConsumeStream second(absl::StrCat("127.0.0.1:", port2), "k", "work", kInFlight);
  std::thread survivor([&] { RunConsumer(first, book, 0, nullptr); });
  std::atomic<bool> doomed_done{false};
  std::thread doomed([&] {
    RunConsumer(second, book, kKillAfterAcks, &held_by_dead);
    doomed_done = true;
  });

  const absl::Time t0 = absl::Now();
  std::atomic<int> completed{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&, t] {
      client::BrokerClient c(absl::StrCat("127.0.0.1:", t % 2 == 0 ? port1 : port2), "k");
      for (int i = t; i < kEvents; i += 4) {
        if (!testing::CompleteUpload(c, i % 2 == 0 ? http1 : http2, signer_, "bkt",
                                     absl::StrCat("load/", i))
                 .empty()) {
          ++completed;
        }
      }
    });
  }
  for (auto& p : producers) p.join();
  // The dying consumer has long held its share by now; never wait forever.
  for (int i = 0; i < 400 && !doomed_done.load(); ++i) absl::SleepFor(absl::Milliseconds(50));
  if (!doomed_done.load()) second.Cancel();
  doomed.join();
  ASSERT_EQ(completed.load(), kEvents);
  const absl::Time deadline = absl::Now() + absl::Seconds(40);
  while (book.acked_distinct() < kEvents && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  first.Cancel();
  survivor.join();
  const absl::Duration took = absl::Now() - t0;

  absl::MutexLock lock(&book.mu);
  ASSERT_EQ(held_by_dead.size(), kInFlight) << "the dying consumer held fewer events than it could";
  ASSERT_EQ(book.acks.size(), static_cast<size_t>(kEvents));
  for (uint64_t c = 1; c <= kEvents; ++c) {
    auto it = book.acks.find(c);
    ASSERT_NE(it, book.acks.end()) << "cursor " << c << " never acknowledged";
    EXPECT_EQ(it->second, 1) << "cursor " << c << " acknowledged " << it->second << " times";
  }
  std::set<uint64_t> redelivered;
  for (const auto& [cursor, attempts] : book.attempts) {
    if (attempts.size() > 1) redelivered.insert(cursor);
    if (held_by_dead.count(cursor) != 0) {
      EXPECT_EQ(attempts, (std::vector<uint32_t>{1, 2})) << "cursor " << cursor;
    } else {
      EXPECT_EQ(attempts, (std::vector<uint32_t>{1})) << "cursor " << cursor;
    }
  }
  EXPECT_EQ(redelivered, held_by_dead);
  std::cout << kEvents << " events, " << held_by_dead.size() << " redelivered, in " << took
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(Engines, ConsumeContractTest,
                         ::testing::Values(Ledger{true}, Ledger{false}),
                         [](const ::testing::TestParamInfo<Ledger>& info) {
                           return info.param.postgres ? "Postgres" : "Sqlite";
                         });

}  // namespace
}  // namespace uploadbroker
