// The fake keeps the parts of ledger.h's contract the tests above it rely on.
#include "tests/testing/fake_ledger.h"

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace uploadbroker::testing {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

v1::Upload Intent(const std::string& id, absl::Time expires, const std::string& key = "k") {
  v1::Upload u;
  u.set_upload_id(id);
  u.set_bucket("photos");
  u.set_key(key);
  u.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(expires));
  return u;
}

v1::Completion Object(const std::string& etag) {
  v1::Completion c;
  c.set_key("k");
  c.set_etag(etag);
  return c;
}

TEST(FakeLedgerTest, DoneAndListenersRunOnTheLedgersThread) {
  FakeClock clock(kNow);
  FakeLedger ledger(&clock);
  std::vector<uint64_t> heard;
  std::thread::id listener_thread;
  ledger.AddListener([&](uint64_t cursor) {
    heard.push_back(cursor);
    listener_thread = std::this_thread::get_id();
  });
  ASSERT_TRUE(ledger::CreateIntentSync(ledger, Intent("up_1", kNow)).ok());
  EXPECT_TRUE(heard.empty());  // no event appended
  absl::Notification done;
  std::thread::id done_thread;
  bool ok = false;
  ledger.CompleteUpload("up_1", Object("E"), [&](absl::StatusOr<ledger::CompleteResult> r) {
    done_thread = std::this_thread::get_id();
    ok = r.ok();
    done.Notify();
  });
  done.WaitForNotification();
  ledger.WaitIdle();
  EXPECT_TRUE(ok);
  EXPECT_EQ(ledger.GetUpload("up_1")->state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_NE(done_thread, std::this_thread::get_id());
  EXPECT_EQ(listener_thread, done_thread);
  EXPECT_EQ(heard, std::vector<uint64_t>{1});
}

TEST(FakeLedgerTest, CompletionChecksRepeatsAndExpiry) {
  FakeLedger ledger;
  ASSERT_TRUE(ledger::CreateIntentSync(ledger, Intent("up_1", kNow)).ok());
  EXPECT_EQ(ledger::CreateIntentSync(ledger, Intent("up_1", kNow)).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ledger::CompleteUploadSync(ledger, "up_2", Object("E")).status().code(),
            absl::StatusCode::kNotFound);
  // A failing check writes nothing.
  auto refused = ledger::CompleteUploadSync(ledger, "up_1", Object("E"), [](const v1::Upload&) {
    return absl::PermissionDeniedError("no");
  });
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*ledger.LastCursor(), 0u);
  auto first = ledger::CompleteUploadSync(ledger, "up_1", Object("E"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->appended);
  EXPECT_EQ(first->event.cursor(), 1u);
  auto again = ledger::CompleteUploadSync(ledger, "up_1", Object("E"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->appended);
  EXPECT_EQ(again->event.cursor(), 1u);
  EXPECT_EQ(ledger::ExpireUploadSync(ledger, "up_1").status().code(),
            absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(ledger::CreateIntentSync(ledger, Intent("up_3", kNow)).ok());
  auto expired = ledger::ExpireUploadSync(ledger, "up_3");
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->cursor(), 2u);
  EXPECT_EQ(ledger::CompleteUploadSync(ledger, "up_3", Object("E")).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto events = ledger.ReadEvents(0, 10);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  EXPECT_EQ((*events)[1].type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EXPECT_EQ(*ledger.FirstCursor(), 1u);
  auto counts = ledger.CountUploadsByState();
  EXPECT_EQ((*counts)[v1::UPLOAD_STATE_COMPLETED], 1);
  EXPECT_EQ((*counts)[v1::UPLOAD_STATE_EXPIRED], 1);
}

TEST(FakeLedgerTest, ClaimedIntentsAreSkippedUntilTheLeaseRunsOut) {
  FakeClock clock(kNow);
  FakeLedger ledger(&clock);
  ASSERT_TRUE(ledger::CreateIntentSync(ledger, Intent("up_late", kNow - absl::Minutes(1))).ok());
  ASSERT_TRUE(ledger::CreateIntentSync(ledger, Intent("up_early", kNow - absl::Minutes(2))).ok());
  ASSERT_TRUE(ledger::CreateIntentSync(ledger, Intent("up_future", kNow + absl::Minutes(1))).ok());
  auto claimed = ledger.ClaimExpiredPending(kNow, 10, absl::Minutes(5));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 2u);
  EXPECT_EQ((*claimed)[0].upload_id(), "up_early");  // oldest expiry first
  EXPECT_EQ((*claimed)[1].upload_id(), "up_late");
  EXPECT_TRUE(ledger.ClaimExpiredPending(kNow, 10, absl::Minutes(5))->empty());
  clock.Advance(absl::Minutes(5));
  EXPECT_EQ(ledger.ClaimExpiredPending(kNow, 10, absl::Minutes(5))->size(), 2u);
}

TEST(FakeLedgerTest, ListsNewestFirstInPages) {
  FakeLedger ledger;
  for (const char* id : {"up_1", "up_2", "up_3"}) {
    ASSERT_TRUE(ledger::CreateIntentSync(ledger, Intent(id, kNow, std::string("a/") + id)).ok());
  }
  ledger::UploadQuery q;
  q.key_prefix = "a/";
  q.limit = 2;
  auto page = ledger.ListUploads(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->uploads.size(), 2u);
  EXPECT_EQ(page->uploads[0].upload_id(), "up_3");
  EXPECT_EQ(page->uploads[1].upload_id(), "up_2");
  ASSERT_NE(page->next_before_seq, 0);
  q.before_seq = page->next_before_seq;
  page = ledger.ListUploads(q);
  ASSERT_EQ(page->uploads.size(), 1u);
  EXPECT_EQ(page->uploads[0].upload_id(), "up_1");
  EXPECT_EQ(page->next_before_seq, 0);
}

TEST(FakeLedgerTest, UnhealthyLedgerRefusesWritesUntilItRecovers) {
  FakeLedger ledger;
  ledger.SetHealthy(false);
  EXPECT_FALSE(ledger.Healthy());
  EXPECT_EQ(ledger::CreateIntentSync(ledger, Intent("up_1", kNow)).code(),
            absl::StatusCode::kUnavailable);
  ledger.SetHealthy(true);
  EXPECT_TRUE(ledger::CreateIntentSync(ledger, Intent("up_1", kNow)).ok());
}

}  // namespace
}  // namespace uploadbroker::testing
