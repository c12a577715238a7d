// A bounded ledger, on each engine: settled intents older than
// retain_settled_age are deleted in chunks, pending ones never, and
// GetUpload says an aged-out upload aged out.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/blocking_counter.h"
#include "gmock/gmock.h"
#include "tests/ledger/ledger_fixture.h"

namespace uploadbroker::ledger {
namespace {

using ::testing::HasSubstr;

// An id as the issuer makes them: "up_" + 12 hex digits of the issue time
// in Unix milliseconds + 20 more.
std::string IdAt(absl::Time issued, int n) {
  return absl::StrFormat("up_%012x%020d", absl::ToUnixMillis(issued), n);
}

class RetentionTest : public LedgerContractTest {};

TEST_P(RetentionTest, SettledIntentsAgeOutAndPendingOnesStay) {
  SqliteLedger::Options options = Options();
  options.retain_settled_age = absl::Hours(24);
  auto ledger = Open(options);
  const std::string completed = IdAt(kStart, 1);
  const std::string expired = IdAt(kStart, 2);
  const std::string pending = IdAt(kStart, 3);
  for (const auto& id : {completed, expired, pending}) {
    ASSERT_TRUE(CreateIntentSync(*ledger, Intent(id)).ok());
  }
  ASSERT_TRUE(CompleteUploadSync(*ledger, completed, Done()).ok());
  ASSERT_TRUE(ExpireUploadSync(*ledger, expired).ok());

  clock_.Advance(absl::Hours(23));
  ASSERT_TRUE(ledger->PruneNow().ok());
  EXPECT_TRUE(ledger->GetUpload(completed).ok()) << "deleted before its time";

  clock_.Advance(absl::Hours(2));
  auto deleted = ledger->PruneNow();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 2);
  for (const auto& id : {completed, expired}) {
    auto gone = ledger->GetUpload(id);
    ASSERT_EQ(gone.status().code(), absl::StatusCode::kNotFound) << id;
    EXPECT_THAT(gone.status().message(), HasSubstr("aged out"));
  }
  auto still = ledger->GetUpload(pending);
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->state(), v1::UPLOAD_STATE_PENDING);
  // The events stay: retention of events is separate.
  EXPECT_EQ(ledger->ReadEvents(0, 10)->size(), 2u);
  // A recent id that never existed is simply unknown.
  auto unknown = ledger->GetUpload(IdAt(clock_.Now(), 9));
  ASSERT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), ::testing::Not(HasSubstr("aged out")));
}

TEST_P(RetentionTest, LargeBacklogsAreDeletedInBoundedChunks) {
  SqliteLedger::Options options = Options();
  options.retain_settled_age = absl::Hours(1);
  auto ledger = Open(options);
  constexpr int kUploads = 2500;
  absl::BlockingCounter settled(kUploads);
  for (int i = 0; i < kUploads; ++i) {
    const std::string id = IdAt(kStart, i);
    // Queued together, so they commit in a few group commits.
    ledger->CreateIntent(Intent(id), [](absl::Status s) { EXPECT_TRUE(s.ok()) << s; });
    ledger->ExpireUpload(id, v1::EXPIRY_REASON_EXPIRED, [&settled](absl::StatusOr<Event> e) {
      EXPECT_TRUE(e.ok()) << e.status();
      settled.DecrementCount();
    });
  }
  settled.Wait();
  clock_.Advance(absl::Hours(2));
  auto first = ledger->PruneNow();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 1000);  // one chunk per pass
  int64_t total = *first;
  while (total < kUploads) {
    auto more = ledger->PruneNow();
    ASSERT_TRUE(more.ok());
    ASSERT_GT(*more, 0);
    total += *more;
  }
  EXPECT_EQ(total, kUploads);
  EXPECT_EQ(ledger->CountUploadsByState()->size(), 0u);
}

UB_LEDGER_ENGINES(RetentionTest);

}  // namespace
}  // namespace uploadbroker::ledger
