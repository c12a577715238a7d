// Ledger intents, on each engine: create, complete (with its in-transaction check) and
// expire.
#include "ledger/sqlite_ledger.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/ledger/ledger_fixture.h"

namespace uploadbroker::ledger {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_P(LedgerContractTest, CreatedIntentReadsBackPending) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("u1")).ok());

  auto upload = ledger->GetUpload("u1");
  ASSERT_TRUE(upload.ok()) << upload.status();
  Upload expected = Intent("u1");
  expected.set_state(v1::UPLOAD_STATE_PENDING);
  EXPECT_TRUE(MessageDifferencer::Equals(*upload, expected));
  EXPECT_EQ(ledger->GetUpload("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*ledger->LastCursor(), 0u);
  EXPECT_EQ(*ledger->FirstCursor(), 0u);
  EXPECT_TRUE(ledger->Healthy());
}

TEST_P(LedgerContractTest, DuplicateIdFailsAloneWithinItsBatch) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("a")).ok());
  absl::Mutex mu;
  std::vector<uint64_t> notified;
  ledger->AddListener([&](uint64_t cursor) {
    absl::MutexLock lock(&mu);
    notified.push_back(cursor);
  });

  // Writes started from a `done` callback are queued while the committer is
  // still busy, so the next batch takes all four together.
  absl::Status dup, other;
  absl::StatusOr<CompleteResult> first, second;
  absl::Notification all_done;
  ledger->CreateIntent(Intent("x"), [&](absl::Status s) {
    ASSERT_TRUE(s.ok()) << s;
    ledger->CompleteUpload("a", Done(), [&](auto r) { first = std::move(r); });
    ledger->CreateIntent(Intent("a"), [&](absl::Status s) { dup = s; });
    ledger->CreateIntent(Intent("b"), [&](absl::Status s) { other = s; });
    ledger->CompleteUpload("x", Done(), [&](auto r) {
      second = std::move(r);
      all_done.Notify();
    });
  });
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(60)));

  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_THAT(dup.message(), HasSubstr("upload_id a already exists"));
  EXPECT_TRUE(other.ok()) << other;
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->event.cursor(), 1u);
  EXPECT_EQ(second->event.cursor(), 2u);
  EXPECT_TRUE(ledger->GetUpload("b").ok());
  // The untouched original "a" was completed, not replaced by the duplicate.
  EXPECT_EQ(ledger->GetUpload("a")->state(), v1::UPLOAD_STATE_COMPLETED);
  // ... and both events were committed by one transaction: one notification.
  ledger.reset();  // drains; listeners have run
  EXPECT_THAT(notified, ElementsAre(2u));
}

TEST_P(LedgerContractTest, CompleteAppendsOneEventCarryingItsCursor) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("u1")).ok());
  clock_.Advance(absl::Seconds(30));

  auto result = CompleteUploadSync(*ledger, "u1", Done());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->appended);
  const Event& event = result->event;
  EXPECT_EQ(event.cursor(), 1u);
  EXPECT_EQ(event.type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  EXPECT_EQ(event.committed_at().seconds(), absl::ToUnixSeconds(clock_.Now()));
  const Upload& upload = event.upload_completed().upload();
  EXPECT_EQ(upload.state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(upload.completion().etag(), "etag-1");
  EXPECT_EQ(upload.completion().source(), v1::COMPLETION_SOURCE_CALLBACK);
  EXPECT_EQ(upload.completion().completed_at().seconds(),
            absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(upload.metadata().at("order"), "u1");

  auto events = ledger->ReadEvents(0, 10);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*events)[0], event));
  EXPECT_TRUE(MessageDifferencer::Equals(*ledger->GetUpload("u1"), upload));
  EXPECT_EQ(*ledger->LastCursor(), 1u);
  EXPECT_EQ(*ledger->FirstCursor(), 1u);
}

TEST_P(LedgerContractTest, RepeatedCompleteReturnsTheEarlierEvent) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("u1")).ok());
  auto first = CompleteUploadSync(*ledger, "u1", Done("etag-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  clock_.Advance(absl::Minutes(1));

  auto again = CompleteUploadSync(*ledger, "u1", Done("etag-2"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->appended);
  EXPECT_TRUE(MessageDifferencer::Equals(again->event, first->event));
  EXPECT_EQ(ledger->ReadEvents(0, 10)->size(), 1u);
  EXPECT_EQ(ledger->GetUpload("u1")->completion().etag(), "etag-1");
}

TEST_P(LedgerContractTest, CompleteUnknownUploadIsNotFound) {
  auto ledger = Open();
  auto result = CompleteUploadSync(*ledger, "ghost", Done());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*ledger->LastCursor(), 0u);
}

// CompleteUpload with a CompletionCheck, waiting for the answer; `seen`
// collects the state of each intent the check was shown.
absl::StatusOr<CompleteResult> CompleteChecked(
    Ledger& ledger, const std::string& id, Completion completion,
    absl::Status verdict, std::vector<v1::UploadState>& seen) {
  absl::Notification finished;
  absl::StatusOr<CompleteResult> result;
  ledger.CompleteUpload(
      id, std::move(completion),
      [&seen, verdict](const Upload& intent) {
        seen.push_back(intent.state());
        return verdict;
      },
      [&](absl::StatusOr<CompleteResult> r) {
        result = std::move(r);
        finished.Notify();
      });
  if (!finished.WaitForNotificationWithTimeout(absl::Seconds(60))) {
    // The callback still refers to this frame: stop here rather than hang.
    std::fprintf(stderr, "CompleteUpload of %s did not finish within 60 s\n", id.c_str());
    std::abort();
  }
  return result;
}

TEST_P(LedgerContractTest, CompletionCheckSeesTheStoredIntentAndCanRefuse) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("u1")).ok());
  std::vector<v1::UploadState> seen;

  // A refusing check: its status is the result and nothing is written.
  auto refused = CompleteChecked(*ledger, "u1", Done(),
                                 absl::PermissionDeniedError("object: no"), seen);
  EXPECT_EQ(refused.status(), absl::PermissionDeniedError("object: no"));
  EXPECT_EQ(ledger->GetUpload("u1")->state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_EQ(*ledger->LastCursor(), 0u);

  auto accepted = CompleteChecked(*ledger, "u1", Done(), absl::OkStatus(), seen);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE(accepted->appended);

  // A repeat shows the check the completed intent; refusing it still wins.
  auto again = CompleteChecked(*ledger, "u1", Done(), absl::OkStatus(), seen);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->appended);
  EXPECT_EQ(CompleteChecked(*ledger, "u1", Done(),
                            absl::FailedPreconditionError("other object"), seen)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);

  // No intent: NotFound without consulting the check.
  EXPECT_EQ(CompleteChecked(*ledger, "ghost", Done(), absl::OkStatus(), seen)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(seen, ElementsAre(v1::UPLOAD_STATE_PENDING, v1::UPLOAD_STATE_PENDING,
                                v1::UPLOAD_STATE_COMPLETED,
                                v1::UPLOAD_STATE_COMPLETED));
  EXPECT_EQ(ledger->ReadEvents(0, 10)->size(), 1u);
}

TEST_P(LedgerContractTest, ExpireAppendsEventAndEndsTheIntent) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("u1")).ok());

  auto event = ExpireUploadSync(*ledger, "u1");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->cursor(), 1u);
  EXPECT_EQ(event->type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EXPECT_EQ(event->upload_expired().upload().state(),
            v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(ledger->GetUpload("u1")->state(), v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(event->upload_expired().upload().expiry_reason(), v1::EXPIRY_REASON_EXPIRED);
  EXPECT_EQ(ledger->GetUpload("u1")->expiry_reason(), v1::EXPIRY_REASON_EXPIRED);

  EXPECT_EQ(ExpireUploadSync(*ledger, "u1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CompleteUploadSync(*ledger, "u1", Done()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ExpireUploadSync(*ledger, "ghost").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger->ReadEvents(0, 10)->size(), 1u);
}

TEST_P(LedgerContractTest, AnAbortedIntentSaysSoInItsEventAndRecord) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("u1")).ok());
  auto event = ExpireUploadSync(*ledger, "u1", v1::EXPIRY_REASON_ABORTED);
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->upload_expired().upload().expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  EXPECT_EQ(ledger->GetUpload("u1")->expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  auto stored = ledger->ReadEvents(0, 10);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].upload_expired().upload().expiry_reason(), v1::EXPIRY_REASON_ABORTED);
  UploadQuery q;
  q.state = v1::UPLOAD_STATE_EXPIRED;
  auto listed = ledger->ListUploads(q);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->uploads.size(), 1u);
  EXPECT_EQ(listed->uploads[0].expiry_reason(), v1::EXPIRY_REASON_ABORTED);
}

TEST_P(LedgerContractTest, ClaimExpiredPendingOldestFirst) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("late", "b", "c", kStart + absl::Hours(2))).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("old", "b", "c", kStart + absl::Minutes(1))).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("mid", "b", "c", kStart + absl::Minutes(5))).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("done", "b", "c", kStart)).ok());
  ASSERT_TRUE(CompleteUploadSync(*ledger, "done", Done()).ok());

  auto due = ledger->ClaimExpiredPending(kStart + absl::Minutes(5), 10, absl::ZeroDuration());
  ASSERT_TRUE(due.ok()) << due.status();
  std::vector<std::string> ids;
  for (const Upload& u : *due) ids.push_back(u.upload_id());
  EXPECT_THAT(ids, ElementsAre("old", "mid"));
  EXPECT_EQ(ledger->ClaimExpiredPending(kStart + absl::Hours(3), 1, absl::ZeroDuration())->size(), 1u);
}

}  // namespace
UB_LEDGER_ENGINES(LedgerContractTest);

}  // namespace uploadbroker::ledger
