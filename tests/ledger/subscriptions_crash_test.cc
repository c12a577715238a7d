// kill -9 of a broker in the middle of a run of acks, on each engine: a
// child process acks events one at a time and reports each ack once the
// ledger acknowledged it; the parent kills it with SIGKILL mid-run and
// reopens the ledger. Every reported ack is kept (its event is never leased
// again) and every other event is leased again once its lease runs out.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/ledger/ledger_fixture.h"
#include "tests/ledger/subscription_helpers.h"

namespace uploadbroker::ledger {
namespace {

class SubscriptionCrashTest : public LedgerContractTest {};

TEST_P(SubscriptionCrashTest, KillNineLosesNoAcknowledgedAck) {
  constexpr int kEvents = 1000;
  const SubscriptionKey key{"app", "orders"};
  {
    auto ledger = Open();
    ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
    AppendEvents(*ledger, kEvents);
    ASSERT_EQ(LeaseSync(*ledger, key, "a", Range(1, kEvents), kEvents, 1000)->size(),
              static_cast<size_t>(kEvents));
  }  // closed: the child opens its own

  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    auto ledger = Open();
    if (ledger == nullptr) _exit(2);
    for (uint64_t c = 1; c <= kEvents; ++c) {
      auto r = AckSync(*ledger, key, {c});
      if (!r.ok()) _exit(3);
      if (write(pipe_fds[1], &c, sizeof c) != sizeof c) _exit(4);
    }
    _exit(0);
  }
  close(pipe_fds[1]);
  std::set<uint64_t> acknowledged;
  uint64_t c = 0;
  while (acknowledged.size() < 150 && read(pipe_fds[0], &c, sizeof c) == sizeof c) {
    acknowledged.insert(c);
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child finished before it was killed";
  while (read(pipe_fds[0], &c, sizeof c) == sizeof c) acknowledged.insert(c);
  close(pipe_fds[0]);
  ASSERT_GE(acknowledged.size(), 150u);
  ASSERT_LT(acknowledged.size(), static_cast<size_t>(kEvents));

  auto ledger = Open();
  clock_.Advance(absl::Seconds(61));
  auto again = LeaseSync(*ledger, key, "b", {}, kEvents, 1000);
  ASSERT_TRUE(again.ok()) << again.status();
  std::set<uint64_t> redelivered;
  for (const Lease& l : *again) redelivered.insert(l.cursor);
  int neither = 0;
  for (uint64_t cursor = 1; cursor <= kEvents; ++cursor) {
    EXPECT_FALSE(acknowledged.count(cursor) && redelivered.count(cursor))
        << "acknowledged " << cursor << " was leased again";
    if (!acknowledged.count(cursor) && !redelivered.count(cursor)) ++neither;
  }
  // At most the one ack in flight when the child died may have been
  // written without being reported.
  EXPECT_LE(neither, 1);
  auto state = ledger->GetSubscription(key);
  ASSERT_TRUE(state.ok());
  // Acks went in cursor order, so the floor is at least the last reported.
  EXPECT_GE(state->ack_floor, *acknowledged.rbegin());
}

UB_LEDGER_ENGINES(SubscriptionCrashTest);

}  // namespace
}  // namespace uploadbroker::ledger
