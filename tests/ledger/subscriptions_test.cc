// Durable subscriptions in the ledger, on each engine (LedgerContractTest):
// creation, leases in cursor order, competing holders, expiry, acks, nacks,
// extensions, dead letters and redrive, the ack floor and its row cleanup,
// target leases, bad input, and progress across a reopen.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ledger/ledger_fixture.h"
#include "tests/ledger/subscription_helpers.h"

namespace uploadbroker::ledger {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const SubscriptionKey kKey{"app", "orders"};

TEST_P(LedgerContractTest, CreateIsIdempotentAndRefusesOtherSettings) {
  auto ledger = Open();
  SubscriptionSpec spec = Spec();
  spec.start_after = 7;
  auto created = CreateSync(*ledger, spec);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->ack_floor, 7u);
  EXPECT_EQ(created->scanned, 7u);
  EXPECT_EQ(created->created_at, kStart);

  clock_.Advance(absl::Minutes(1));
  spec.start_after = 99;  // not a setting: the same subscription
  auto again = CreateSync(*ledger, spec);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->created_at, kStart);
  EXPECT_EQ(again->ack_floor, 7u);

  SubscriptionSpec other = Spec();
  other.ack_deadline = absl::Seconds(30);
  auto refused = CreateSync(*ledger, other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(refused.status().message(), HasSubstr("ack_deadline"));
  other = Spec();
  other.filter.add_buckets("videos");
  EXPECT_THAT(CreateSync(*ledger, other).status().message(), HasSubstr("filter"));

  // Names are per caller.
  ASSERT_TRUE(CreateSync(*ledger, Spec("orders", "other-app")).ok());
  auto mine = ledger->ListSubscriptions("app");
  ASSERT_TRUE(mine.ok()) << mine.status();
  ASSERT_THAT(*mine, SizeIs(1));
  EXPECT_EQ(mine->front().spec.key.caller, "app");
  EXPECT_THAT(*ledger->ListSubscriptions(""), SizeIs(2));

  auto got = ledger->GetSubscription(kKey);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->spec.filter.buckets(0), "photos");
  EXPECT_EQ(got->spec.ack_deadline, absl::Seconds(60));
  EXPECT_EQ(got->spec.max_delivery_attempts, 10);

  ASSERT_TRUE(DeleteSync(*ledger, kKey).ok());
  EXPECT_EQ(ledger->GetSubscription(kKey).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DeleteSync(*ledger, kKey).code(), absl::StatusCode::kNotFound);
}

TEST_P(LedgerContractTest, BadInputIsInvalidArgumentNamingTheField) {
  auto ledger = Open();
  auto expect_bad = [](const absl::Status& status, const std::string& field) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(status.message(), HasSubstr(field));
  };
  for (std::string name : {std::string(), std::string(129, 'a'), std::string("a/b"),
                           std::string("x y"), std::string("caf\xc3\xa9"),
                           std::string("a\0b", 3)}) {
    expect_bad(CreateSync(*ledger, Spec(name)).status(), "name");
  }
  EXPECT_TRUE(CreateSync(*ledger, Spec(std::string(128, 'a'))).ok());
  EXPECT_TRUE(CreateSync(*ledger, Spec("A-z_0.9")).ok());
  expect_bad(CreateSync(*ledger, Spec("ok", "bad\xff")).status(), "caller");

  SubscriptionSpec spec = Spec();
  spec.ack_deadline = absl::Milliseconds(999);
  expect_bad(CreateSync(*ledger, spec).status(), "ack_deadline");
  spec.ack_deadline = absl::Minutes(10) + absl::Seconds(1);
  expect_bad(CreateSync(*ledger, spec).status(), "ack_deadline");
  spec = Spec();
  spec.max_delivery_attempts = 0;
  expect_bad(CreateSync(*ledger, spec).status(), "max_delivery_attempts");
  spec.max_delivery_attempts = 1001;
  expect_bad(CreateSync(*ledger, spec).status(), "max_delivery_attempts");
  spec = Spec();
  spec.target = "https://x";
  expect_bad(CreateSync(*ledger, spec).status(), "target");

  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 3);
  expect_bad(AckSync(*ledger, kKey, std::vector<uint64_t>(10'001, 1)).status(), "cursors");
  expect_bad(AckSync(*ledger, kKey, {0}).status(), "cursors");
  expect_bad(LeaseSync(*ledger, kKey, "", {1}, 1).status(), "holder");
  expect_bad(LeaseSync(*ledger, kKey, "h\n", {1}, 1).status(), "holder");
  expect_bad(LeaseSync(*ledger, kKey, "h", {2, 1}, 2).status(), "candidates");
  expect_bad(LeaseSync(*ledger, kKey, "h", {1, 3}, 2).status(), "candidates");
  expect_bad(LeaseSync(*ledger, kKey, "h", {1}, 1, 0).status(), "max");
  expect_bad(LeaseSync(*ledger, kKey, "h", std::vector<uint64_t>(10'001, 1), 1).status(),
             "candidates");
  expect_bad(NackSync(*ledger, kKey, {1}, "no", absl::Seconds(-1)).status(), "retry_after");
  expect_bad(ExtendSync(*ledger, kKey, "h", {1}, absl::Minutes(11)).status(), "extension");
  expect_bad(ClaimSync(*ledger, "bad name", "h", absl::Seconds(10)).status(), "target");
  expect_bad(ClaimSync(*ledger, "t", "h", absl::Hours(1)).status(), "lease");
  expect_bad(ledger->ListDeadLetters(kKey, 0, 0).status(), "limit");
  // Nothing changed.
  auto state = ledger->GetSubscription(kKey);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->scanned, 0u);
  EXPECT_EQ(state->leased, 0);
}

TEST_P(LedgerContractTest, UnknownSubscriptionIsNotFoundEverywhere) {
  auto ledger = Open();
  const SubscriptionKey none{"app", "none"};
  EXPECT_EQ(ledger->GetSubscription(none).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LeaseSync(*ledger, none, "h", {}, 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AckSync(*ledger, none, {1}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(NackSync(*ledger, none, {1}, "x", absl::ZeroDuration()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ExtendSync(*ledger, none, "h", {1}, absl::Seconds(5)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger->ListDeadLetters(none, 0, 10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RedriveSync(*ledger, none, {}).status().code(), absl::StatusCode::kNotFound);
  // Another caller's subscription of the same name is not this one.
  ASSERT_TRUE(CreateSync(*ledger, Spec("none", "someone-else")).ok());
  EXPECT_EQ(ledger->GetSubscription(none).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(LedgerContractTest, LeasesGoInCursorOrderAndTheFloorFollowsAcks) {
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 6);
  // Event 4 does not match (the dispatcher leaves it out); max cuts at 2.
  auto first = LeaseSync(*ledger, kKey, "a", {1, 2, 3, 5, 6}, 6, 2);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(LeasedCursors(*first), ElementsAre(1, 2));
  EXPECT_EQ(first->front().attempt, 1);
  EXPECT_EQ(first->front().lease_until, kStart + absl::Seconds(60));
  EXPECT_EQ(ledger->GetSubscription(kKey)->scanned, 2u);  // just below 3

  auto second = LeaseSync(*ledger, kKey, "a", {3, 5, 6}, 6);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(LeasedCursors(*second), ElementsAre(3, 5, 6));
  auto state = ledger->GetSubscription(kKey);
  EXPECT_EQ(state->scanned, 6u);
  EXPECT_EQ(state->leased, 5);
  EXPECT_EQ(state->ack_floor, 0u);

  EXPECT_EQ(AckSync(*ledger, kKey, {2})->ack_floor, 0u);
  EXPECT_EQ(AckSync(*ledger, kKey, {1})->ack_floor, 2u);
  EXPECT_EQ(AckSync(*ledger, kKey, {5, 6})->ack_floor, 2u);
  state = ledger->GetSubscription(kKey);
  EXPECT_EQ(state->acked_above_floor, 2);
  // 4 never matched, so once 3 is acknowledged the floor passes it.
  auto last = AckSync(*ledger, kKey, {3});
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->ack_floor, 6u);
  EXPECT_THAT(last->unknown, IsEmpty());
  state = ledger->GetSubscription(kKey);
  EXPECT_EQ(state->acked_above_floor, 0);  // rows at or below the floor are gone
  EXPECT_EQ(state->leased, 0);

  // Repeating an ack is harmless; cursors at or below the floor are settled.
  auto repeat = AckSync(*ledger, kKey, {1, 3, 6});
  ASSERT_TRUE(repeat.ok());
  EXPECT_THAT(repeat->unknown, IsEmpty());
  // Nothing more to lease, even after every deadline.
  clock_.Advance(absl::Hours(1));
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "b", {}, 6), IsEmpty());
}

TEST_P(LedgerContractTest, CompetingHoldersNeverShareACursorWhileALeaseRuns) {
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 5);
  auto a = LeaseSync(*ledger, kKey, "a", Range(1, 5), 5, 3);
  ASSERT_TRUE(a.ok());
  EXPECT_THAT(LeasedCursors(*a), ElementsAre(1, 2, 3));
  // b proposes everything it saw; what a holds is not handed out again.
  auto b = LeaseSync(*ledger, kKey, "b", Range(1, 5), 5, 10);
  ASSERT_TRUE(b.ok());
  EXPECT_THAT(LeasedCursors(*b), ElementsAre(4, 5));
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "c", Range(1, 5), 5, 10), IsEmpty());
  clock_.Advance(absl::Seconds(59));
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "c", {}, 5, 10), IsEmpty());
}

TEST_P(LedgerContractTest, ExpiredLeasesGoToTheNextHolderAndAcksFromAnyoneCount) {
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 3);
  ASSERT_THAT(LeasedCursors(*LeaseSync(*ledger, kKey, "a", Range(1, 3), 3)), ElementsAre(1, 2, 3));
  ASSERT_TRUE(AckSync(*ledger, kKey, {2}).ok());
  clock_.Advance(absl::Seconds(60));  // the lease ends at exactly this instant
  auto b = LeaseSync(*ledger, kKey, "b", {}, 3);
  ASSERT_TRUE(b.ok());
  EXPECT_THAT(LeasedCursors(*b), ElementsAre(1, 3));  // never 2: it was acknowledged
  EXPECT_EQ(b->front().attempt, 2);
  EXPECT_EQ(b->front().lease_until, kStart + absl::Seconds(120));
  // a finishes late: its ack still settles the event.
  auto late = AckSync(*ledger, kKey, {1, 3});
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->ack_floor, 3u);
}

TEST_P(LedgerContractTest, NackMakesAnEventAvailableAfterItsRetryTime) {
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 2);
  ASSERT_TRUE(LeaseSync(*ledger, kKey, "a", Range(1, 2), 2).ok());
  auto nacked = NackSync(*ledger, kKey, {1, 9}, "consumer refused: busy", absl::Seconds(10));
  ASSERT_TRUE(nacked.ok()) << nacked.status();
  EXPECT_THAT(nacked->unknown, ElementsAre(9));
  EXPECT_EQ(nacked->ack_floor, 0u);
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "b", {}, 2), IsEmpty());
  clock_.Advance(absl::Seconds(10));
  auto again = LeaseSync(*ledger, kKey, "b", {}, 2);
  ASSERT_TRUE(again.ok());
  ASSERT_THAT(LeasedCursors(*again), ElementsAre(1));
  EXPECT_EQ(again->front().attempt, 2);
  // Acknowledged events ignore nacks.
  ASSERT_TRUE(AckSync(*ledger, kKey, {2}).ok());
  ASSERT_TRUE(NackSync(*ledger, kKey, {2}, "too late", absl::ZeroDuration()).ok());
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "b", {}, 2), IsEmpty());
}

TEST_P(LedgerContractTest, ExtendKeepsALeaseOnlyForItsHolder) {
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 2);
  ASSERT_TRUE(LeaseSync(*ledger, kKey, "a", Range(1, 2), 2).ok());
  clock_.Advance(absl::Seconds(30));
  auto not_held = ExtendSync(*ledger, kKey, "a", {1, 2, 7}, absl::Minutes(5));
  ASSERT_TRUE(not_held.ok()) << not_held.status();
  EXPECT_THAT(*not_held, ElementsAre(7));
  EXPECT_THAT(*ExtendSync(*ledger, kKey, "b", {1}, absl::Minutes(5)), ElementsAre(1));
  clock_.Advance(absl::Minutes(4));  // past the first deadline, within the extension
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "b", {}, 2), IsEmpty());
  clock_.Advance(absl::Minutes(1) + absl::Seconds(30));
  EXPECT_THAT(LeasedCursors(*LeaseSync(*ledger, kKey, "b", {}, 2)), ElementsAre(1, 2));
  // a's lease ran out: extending it now is refused.
  EXPECT_THAT(*ExtendSync(*ledger, kKey, "a", {1}, absl::Minutes(5)), ElementsAre(1));
}

TEST_P(LedgerContractTest, DeadLettersKeepEveryReasonAndCanBeRedriven) {
  auto ledger = Open();
  SubscriptionSpec spec = Spec();
  spec.max_delivery_attempts = 3;
  ASSERT_TRUE(CreateSync(*ledger, spec).ok());
  AppendEvents(*ledger, 3);
  ASSERT_THAT(LeasedCursors(*LeaseSync(*ledger, kKey, "a", Range(1, 3), 3)), ElementsAre(1, 2, 3));
  ASSERT_TRUE(AckSync(*ledger, kKey, {1, 3}).ok());
  // Attempt 1 refused, attempt 2 target answered 500, attempt 3 runs out.
  ASSERT_TRUE(NackSync(*ledger, kKey, {2}, "consumer refused: bad input", absl::ZeroDuration()).ok());
  ASSERT_THAT(LeasedCursors(*LeaseSync(*ledger, kKey, "a", {}, 3)), ElementsAre(2));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(NackSync(*ledger, kKey, {2}, "target answered 500", absl::ZeroDuration()).ok());
  auto third = LeaseSync(*ledger, kKey, "a", {}, 3);
  ASSERT_THAT(LeasedCursors(*third), ElementsAre(2));
  EXPECT_EQ(third->front().attempt, 3);
  clock_.Advance(absl::Seconds(60));
  // The next lease finds it used up: dead, not leased; the floor passes it.
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "a", {}, 3), IsEmpty());
  auto state = ledger->GetSubscription(kKey);
  EXPECT_EQ(state->dead, 1);
  EXPECT_EQ(state->ack_floor, 3u);

  auto dead = ledger->ListDeadLetters(kKey, 0, 10);
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_THAT(*dead, SizeIs(1));
  EXPECT_EQ(dead->front().cursor, 2u);
  EXPECT_EQ(dead->front().died_at, kStart + absl::Seconds(61));
  ASSERT_THAT(dead->front().attempts, SizeIs(3));
  EXPECT_EQ(dead->front().attempts[0].reason, "consumer refused: bad input");
  EXPECT_EQ(dead->front().attempts[0].at, kStart);
  EXPECT_EQ(dead->front().attempts[1].reason, "target answered 500");
  EXPECT_EQ(dead->front().attempts[2].reason, "deadline passed");
  EXPECT_EQ(dead->front().attempts[2].at, kStart + absl::Seconds(61));
  EXPECT_THAT(*ledger->ListDeadLetters(kKey, 2, 10), IsEmpty());

  // Redrive: available again with fresh attempts, though below the floor.
  EXPECT_EQ(*RedriveSync(*ledger, kKey, {1, 2}), 1);
  EXPECT_THAT(*ledger->ListDeadLetters(kKey, 0, 10), IsEmpty());
  auto redriven = LeaseSync(*ledger, kKey, "b", {}, 3);
  ASSERT_THAT(LeasedCursors(*redriven), ElementsAre(2));
  EXPECT_EQ(redriven->front().attempt, 1);
  ASSERT_TRUE(AckSync(*ledger, kKey, {2}).ok());
  state = ledger->GetSubscription(kKey);
  EXPECT_EQ(state->dead, 0);
  EXPECT_EQ(state->acked_above_floor, 0);
  EXPECT_EQ(state->ack_floor, 3u);
  EXPECT_EQ(*RedriveSync(*ledger, kKey, {}), 0);
}

TEST_P(LedgerContractTest, OneAttemptDiesOnItsFirstNackAndReasonsAreBounded) {
  auto ledger = Open();
  SubscriptionSpec spec = Spec();
  spec.max_delivery_attempts = 1;
  ASSERT_TRUE(CreateSync(*ledger, spec).ok());
  AppendEvents(*ledger, 2);
  ASSERT_TRUE(LeaseSync(*ledger, kKey, "a", Range(1, 2), 2).ok());
  std::string huge(101, 'x');
  for (int i = 0; i < 300; ++i) huge += "\xc3\xa9";  // byte 512 is inside a character
  auto nacked = NackSync(*ledger, kKey, {1}, huge, absl::Hours(1));
  ASSERT_TRUE(nacked.ok()) << nacked.status();
  // Dead at once: the floor passes 1 while 2 is still out.
  EXPECT_EQ(nacked->ack_floor, 1u);
  auto dead = ledger->ListDeadLetters(kKey, 0, 10);
  ASSERT_THAT(*dead, SizeIs(1));
  const std::string& reason = dead->front().attempts.at(0).reason;
  EXPECT_EQ(reason.size(), 511u);
  EXPECT_EQ(reason, huge.substr(0, reason.size()));  // cut between characters
}

TEST_P(LedgerContractTest, RetriesKeepOnlyTheLastTwentyReasons) {
  auto ledger = Open();
  SubscriptionSpec spec = Spec();
  spec.max_delivery_attempts = 30;
  ASSERT_TRUE(CreateSync(*ledger, spec).ok());
  AppendEvents(*ledger, 1);
  std::vector<uint64_t> candidates = {1};
  for (int i = 0; i < 30; ++i) {
    auto leased = LeaseSync(*ledger, kKey, "a", candidates, 1);
    ASSERT_THAT(LeasedCursors(*leased), ElementsAre(1)) << i;
    candidates.clear();
    ASSERT_TRUE(NackSync(*ledger, kKey, {1}, absl::StrCat("no ", i), absl::ZeroDuration()).ok());
  }
  auto dead = ledger->ListDeadLetters(kKey, 0, 10);
  ASSERT_THAT(*dead, SizeIs(1));
  ASSERT_THAT(dead->front().attempts, SizeIs(20));
  EXPECT_EQ(dead->front().attempts.front().reason, "no 10");
  EXPECT_EQ(dead->front().attempts.back().reason, "no 29");
}

TEST_P(LedgerContractTest, UnknownCursorsChangeNothing) {
  auto ledger = Open();
  SubscriptionSpec spec = Spec();
  spec.start_after = 2;
  ASSERT_TRUE(CreateSync(*ledger, spec).ok());
  AppendEvents(*ledger, 5);
  ASSERT_TRUE(LeaseSync(*ledger, kKey, "a", {3, 5}, 5).ok());
  // 4 was scanned but never delivered (did not match); 6 and 1000 not yet.
  auto acked = AckSync(*ledger, kKey, {4, 6, 1000, 3});
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_THAT(acked->unknown, ElementsAre(4, 6, 1000));
  EXPECT_EQ(acked->ack_floor, 4u);
  // A later lease still hands out 6 when it matches.
  EXPECT_THAT(LeasedCursors(*LeaseSync(*ledger, kKey, "a", {6}, 6)), ElementsAre(6));
}

TEST_P(LedgerContractTest, CandidatesAlreadyScannedByAnotherDispatcherAreIgnored) {
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 4);
  ASSERT_TRUE(LeaseSync(*ledger, kKey, "a", Range(1, 3), 3).ok());
  ASSERT_TRUE(AckSync(*ledger, kKey, {1, 2, 3}).ok());
  // A dispatcher that read `scanned` before the first lease proposes 1..4.
  EXPECT_THAT(LeasedCursors(*LeaseSync(*ledger, kKey, "b", Range(1, 4), 4)), ElementsAre(4));
  // One that lags behind moves nothing back.
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "c", {2}, 2), IsEmpty());
  EXPECT_EQ(ledger->GetSubscription(kKey)->scanned, 4u);
}

TEST_P(LedgerContractTest, DeletingASubscriptionForgetsItsProgress) {
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 3);
  ASSERT_TRUE(LeaseSync(*ledger, kKey, "a", Range(1, 3), 3).ok());
  ASSERT_TRUE(DeleteSync(*ledger, kKey).ok());
  auto fresh = CreateSync(*ledger, Spec());
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->leased, 0);
  EXPECT_THAT(LeasedCursors(*LeaseSync(*ledger, kKey, "b", Range(1, 3), 3)), ElementsAre(1, 2, 3));
}

TEST_P(LedgerContractTest, ProgressSurvivesAReopen) {
  {
    auto ledger = Open();
    SubscriptionSpec spec = Spec();
    spec.max_delivery_attempts = 1;
    ASSERT_TRUE(CreateSync(*ledger, spec).ok());
    AppendEvents(*ledger, 4);
    ASSERT_TRUE(LeaseSync(*ledger, kKey, "a", Range(1, 4), 4).ok());
    ASSERT_TRUE(AckSync(*ledger, kKey, {1, 3}).ok());
    ASSERT_TRUE(NackSync(*ledger, kKey, {2}, "bad", absl::ZeroDuration()).ok());
  }
  auto ledger = Open();
  auto state = ledger->GetSubscription(kKey);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->ack_floor, 3u);
  EXPECT_EQ(state->scanned, 4u);
  EXPECT_EQ(state->dead, 1);
  EXPECT_EQ(state->leased, 1);
  clock_.Advance(absl::Minutes(2));
  EXPECT_THAT(*LeaseSync(*ledger, kKey, "b", {}, 4), IsEmpty());  // 4 used its one attempt
  EXPECT_THAT(*ledger->ListDeadLetters(kKey, 0, 10), SizeIs(2));
}

TEST_P(LedgerContractTest, TargetLeasesAreTakenOnlyAfterTheyRunOut) {
  auto ledger = Open();
  EXPECT_TRUE(*ClaimSync(*ledger, "hook", "a", absl::Seconds(10)));
  EXPECT_FALSE(*ClaimSync(*ledger, "hook", "b", absl::Seconds(10)));
  EXPECT_TRUE(*ClaimSync(*ledger, "other", "b", absl::Seconds(10)));  // one row per target
  clock_.Advance(absl::Seconds(9));
  EXPECT_TRUE(*ClaimSync(*ledger, "hook", "a", absl::Seconds(10)));  // renewed until 19 s
  clock_.Advance(absl::Seconds(9));
  EXPECT_FALSE(*ClaimSync(*ledger, "hook", "b", absl::Seconds(10)));
  clock_.Advance(absl::Seconds(1));  // a died without releasing it
  EXPECT_TRUE(*ClaimSync(*ledger, "hook", "b", absl::Seconds(10)));
  EXPECT_FALSE(*ClaimSync(*ledger, "hook", "a", absl::Seconds(10)));
  ASSERT_TRUE(ReleaseSync(*ledger, "hook", "a").ok());  // not a's: no effect
  EXPECT_FALSE(*ClaimSync(*ledger, "hook", "a", absl::Seconds(10)));
  ASSERT_TRUE(ReleaseSync(*ledger, "hook", "b").ok());
  EXPECT_TRUE(*ClaimSync(*ledger, "hook", "a", absl::Seconds(10)));
}

TEST_P(LedgerContractTest, SubscriptionWritesShareBatchesWithCallbacks) {
  SqliteLedger::Options options = Options();
  auto ledger = Open(options);
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 50);
  // Leases, acks and completions queued together all succeed.
  absl::BlockingCounter left(150);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(CreateIntentSync(*ledger, Intent(absl::StrCat("v-", i))).ok());
  }
  for (int i = 0; i < 50; ++i) {
    ledger->LeaseEvents(kKey, absl::StrCat("h", i), {static_cast<uint64_t>(i + 1)},
                        static_cast<uint64_t>(i + 1), 1,
                        [&](absl::StatusOr<std::vector<Lease>> r) {
                          EXPECT_TRUE(r.ok()) << r.status();
                          left.DecrementCount();
                        });
    ledger->CompleteUpload(absl::StrCat("v-", i), Done(), [&](absl::StatusOr<CompleteResult> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      left.DecrementCount();
    });
    // Malicious keys in the same batches are refused alone.
    ledger->AckEvents({"app\xff", std::string("a\0b", 3)}, {1},
                      [&](absl::StatusOr<AckResult> r) {
                        EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
                        left.DecrementCount();
                      });
  }
  left.Wait();
  EXPECT_EQ(ledger->GetSubscription(kKey)->leased, 50);
  EXPECT_EQ(*ledger->LastCursor(), 100u);
}

// Instantiated for both engines in intents_test.cc.

}  // namespace
}  // namespace uploadbroker::ledger
