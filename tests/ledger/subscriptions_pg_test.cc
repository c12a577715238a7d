// Durable subscriptions across brokers on PostgreSQL: two ledgers (two
// brokers) on one database competing on one subscription, and a server
// restart in the middle of a run of acks.
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/postgres_ledger.h"
#include "tests/ledger/ledger_fixture.h"
#include "tests/ledger/subscription_helpers.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/postgres_server.h"

namespace uploadbroker::ledger {
namespace {

using ::testing::IsEmpty;

const SubscriptionKey kKey{"app", "orders"};

std::unique_ptr<PostgresLedger> OpenPg(const std::string& dsn, common::Clock* clock) {
  PostgresLedger::Options options;
  options.dsn = dsn;
  options.ledger.clock = clock;
  options.poll_interval = absl::Milliseconds(100);
  auto ledger = PostgresLedger::Create(std::move(options));
  EXPECT_TRUE(ledger.ok()) << ledger.status();
  return std::move(ledger).value();
}

// Four dispatchers, two on each broker, each proposing the events it read
// after the `scanned` it last saw (so they overlap), leasing, and acking
// what it got. The clock stands still: no lease runs out, so a cursor
// handed to two holders would be a double delivery while a lease runs.
TEST(PostgresSubscriptionsTest, TwoBrokersNeverLeaseOneCursorTwice) {
  constexpr int kEvents = 2000;
  auto dsn = SharedPostgres().NewDatabase();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  testing::FakeClock clock(kStart);
  auto a = OpenPg(*dsn, &clock);
  auto b = OpenPg(*dsn, &clock);
  ASSERT_TRUE(CreateSync(*a, Spec()).ok());
  // Both brokers append, concurrently.
  std::thread append_b([&] { AppendEvents(*b, kEvents / 2, "b"); });
  AppendEvents(*a, kEvents / 2, "a");
  append_b.join();

  absl::Mutex mu;
  std::map<uint64_t, std::string> leased_to;
  std::map<uint64_t, int> leases, acks;
  std::atomic<bool> failed{false};
  auto dispatch = [&](Ledger* ledger, const std::string& holder) {
    for (int round = 0; round < 10'000 && !failed; ++round) {
      auto state = ledger->GetSubscription(kKey);
      auto last = ledger->LastCursor();
      if (!state.ok() || !last.ok()) {
        failed = true;
        ADD_FAILURE() << state.status() << " " << last.status();
        return;
      }
      if (state->ack_floor >= kEvents) return;
      const uint64_t through = std::min<uint64_t>(*last, state->scanned + 300);
      std::vector<uint64_t> candidates;
      for (uint64_t c = state->scanned + 1; c <= through; ++c) candidates.push_back(c);
      auto got = LeaseSync(*ledger, kKey, holder, candidates, through, 40);
      if (!got.ok()) {
        failed = true;
        ADD_FAILURE() << holder << ": " << got.status();
        return;
      }
      {
        absl::MutexLock lock(&mu);
        for (const Lease& l : *got) {
          if (++leases[l.cursor] > 1) {
            ADD_FAILURE() << "cursor " << l.cursor << " leased to " << holder << " and "
                          << leased_to[l.cursor];
            failed = true;
          }
          leased_to[l.cursor] = holder;
        }
      }
      if (got->empty()) continue;
      auto acked = AckSync(*ledger, kKey, LeasedCursors(*got));
      if (!acked.ok() || !acked->unknown.empty()) {
        failed = true;
        ADD_FAILURE() << holder << ": " << acked.status();
        return;
      }
      absl::MutexLock lock(&mu);
      for (const Lease& l : *got) ++acks[l.cursor];
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back(dispatch, a.get(), "a1");
  threads.emplace_back(dispatch, a.get(), "a2");
  threads.emplace_back(dispatch, b.get(), "b1");
  threads.emplace_back(dispatch, b.get(), "b2");
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed);

  EXPECT_EQ(leases.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(acks.size(), static_cast<size_t>(kEvents));
  for (const auto& [cursor, n] : acks) EXPECT_EQ(n, 1) << cursor;
  std::set<std::string> holders;
  for (const auto& [cursor, holder] : leased_to) holders.insert(holder);
  EXPECT_GE(holders.size(), 2u) << "only one dispatcher got work";
  auto state = b->GetSubscription(kKey);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->ack_floor, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(state->acked_above_floor, 0);
}

// A lease held by a broker that died is free once it runs out: nothing of
// the dead broker is needed (its ledger is gone, its connections closed).
TEST(PostgresSubscriptionsTest, ADeadBrokersLeasesAndTargetsRunOut) {
  auto dsn = SharedPostgres().NewDatabase();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  testing::FakeClock clock(kStart);
  auto survivor = OpenPg(*dsn, &clock);
  {
    auto dying = OpenPg(*dsn, &clock);
    ASSERT_TRUE(CreateSync(*dying, Spec()).ok());
    AppendEvents(*dying, 5);
    ASSERT_EQ(LeaseSync(*dying, kKey, "dying", Range(1, 5), 5)->size(), 5u);
    ASSERT_TRUE(*ClaimSync(*dying, "hook", "dying", absl::Seconds(10)));
  }
  EXPECT_THAT(*LeaseSync(*survivor, kKey, "b", {}, 5), IsEmpty());
  EXPECT_FALSE(*ClaimSync(*survivor, "hook", "b", absl::Seconds(10)));
  clock.Advance(absl::Seconds(60));
  EXPECT_EQ(LeaseSync(*survivor, kKey, "b", {}, 5)->size(), 5u);
  EXPECT_TRUE(*ClaimSync(*survivor, "hook", "b", absl::Seconds(10)));
}

// Acks run one after another while the server is stopped (immediate mode,
// so connections drop, some during a COMMIT) and started again. Every ack
// that was acknowledged is kept: after the leases run out, none of those
// events is leased again, and every event whose ack failed is.
TEST(PostgresSubscriptionsTest, ARestartLosesNoAcknowledgedAck) {
  constexpr int kEvents = 300;
  testing::PostgresServer server;
  ASSERT_TRUE(server.Start().ok());
  auto dsn = server.NewDatabase();
  ASSERT_TRUE(dsn.ok()) << dsn.status();
  testing::FakeClock clock(kStart);
  auto ledger = OpenPg(*dsn, &clock);
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, kEvents);
  ASSERT_EQ(LeaseSync(*ledger, kKey, "a", Range(1, kEvents), kEvents, 1000)->size(),
            static_cast<size_t>(kEvents));

  std::set<uint64_t> acknowledged, unknown_outcome;
  std::atomic<int> acked_count{0};
  std::thread acker([&] {
    for (uint64_t c = 1; c <= kEvents; ++c) {
      auto r = AckSync(*ledger, kKey, {c});
      if (r.ok()) {
        acknowledged.insert(c);
        ++acked_count;
      } else if (absl::StrContains(r.status().message(), "unknown")) {
        unknown_outcome.insert(c);
      }
      absl::SleepFor(absl::Milliseconds(3));
    }
  });
  while (acked_count < 80) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(server.Stop("immediate").ok());
  const int acked_before_stop = acked_count;
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(server.Start().ok());
  acker.join();
  ASSERT_LT(acked_before_stop, kEvents) << "the restart came too late";
  // Acks blocked in a lost COMMIT's resolution may all succeed once the
  // server is back; acks made while it was down fail. Either way:
  ASSERT_GE(acknowledged.size(), 80u);

  clock.Advance(absl::Seconds(61));
  std::set<uint64_t> redelivered;
  for (int i = 0; i < 100; ++i) {
    auto got = LeaseSync(*ledger, kKey, "b", {}, kEvents, 1000);
    if (!got.ok()) {  // the writer may still be reconnecting
      absl::SleepFor(absl::Milliseconds(200));
      continue;
    }
    for (const Lease& l : *got) redelivered.insert(l.cursor);
    break;
  }
  for (uint64_t c = 1; c <= kEvents; ++c) {
    if (acknowledged.count(c)) {
      EXPECT_EQ(redelivered.count(c), 0u) << "acknowledged " << c << " was leased again";
    } else if (!unknown_outcome.count(c)) {
      EXPECT_EQ(redelivered.count(c), 1u) << "unacknowledged " << c << " was not leased again";
    }
  }
}

}  // namespace
}  // namespace uploadbroker::ledger
