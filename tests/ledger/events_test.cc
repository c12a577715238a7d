// The ledger's event log, on each engine: gap-free cursors under concurrency, reopening,
// stored records, shutdown, retention, listing and listeners.
#include "ledger/sqlite_ledger.h"

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

TEST_P(LedgerContractTest, ConcurrentWritersGetGapFreeDurableCursors) {
  constexpr int kThreads = 16;
  constexpr int kUploadsPerThread = 100;  // a create and a complete each
  constexpr uint64_t kEvents = kThreads * kUploadsPerThread;
  std::map<uint64_t, std::string> by_cursor;
  {
    auto ledger = Open();
    absl::Mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kUploadsPerThread; ++i) {
          std::string id = absl::StrCat("t", t, "-", i);
          ASSERT_TRUE(CreateIntentSync(*ledger, Intent(id)).ok());
          auto result = CompleteUploadSync(*ledger, id, Done());
          ASSERT_TRUE(result.ok()) << result.status();
          absl::MutexLock lock(&mu);
          EXPECT_TRUE(by_cursor.emplace(result->event.cursor(), id).second);
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  ASSERT_EQ(by_cursor.size(), kEvents);
  EXPECT_EQ(by_cursor.begin()->first, 1u);
  EXPECT_EQ(by_cursor.rbegin()->first, kEvents);

  // Reopened: every event is there, in cursor order, read page by page.
  auto ledger = Open();
  EXPECT_EQ(*ledger->LastCursor(), kEvents);
  uint64_t after = 0;
  for (;;) {
    auto page = ledger->ReadEvents(after, 100);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    for (const Event& event : *page) {
      ASSERT_EQ(event.cursor(), after + 1);
      EXPECT_EQ(event.upload_completed().upload().upload_id(),
                by_cursor[event.cursor()]);
      after = event.cursor();
    }
  }
  EXPECT_EQ(after, kEvents);
}

TEST_P(LedgerContractTest, ReopenKeepsDataAndContinuesCursors) {
  {
    auto ledger = Open();
    for (std::string id : {"a", "b", "c"}) {
      ASSERT_TRUE(CreateIntentSync(*ledger, Intent(id)).ok());
      ASSERT_TRUE(CompleteUploadSync(*ledger, id, Done()).ok());
    }
    ASSERT_TRUE(CreateIntentSync(*ledger, Intent("d")).ok());
  }
  auto ledger = Open();
  EXPECT_EQ(ledger->GetUpload("b")->state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(ledger->GetUpload("d")->state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_THAT(Cursors(*ledger->ReadEvents(0, 10)), ElementsAre(1, 2, 3));
  auto result = CompleteUploadSync(*ledger, "d", Done());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->event.cursor(), 4u);
  EXPECT_EQ(CreateIntentSync(*ledger, Intent("a")).code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_P(LedgerContractTest, EventRecordsAreTheStoredEventsUnparsed) {
  auto ledger = Open();
  for (std::string id : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(CreateIntentSync(*ledger, Intent(id)).ok());
    ASSERT_TRUE(CompleteUploadSync(*ledger, id, Done()).ok());
  }
  auto events = ledger->ReadEvents(1, 10);
  auto records = ledger->ReadEventRecords(1, 10, 1 << 20);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const auto& entry = records->entries[i];
    EXPECT_EQ(entry.cursor, i + 2);
    Event parsed;
    ASSERT_TRUE(parsed.ParseFromArray(records->data.data() + entry.offset,
                                      static_cast<int>(entry.size)));
    EXPECT_TRUE(MessageDifferencer::Equals(parsed, (*events)[i]));
  }
  // The byte limit ends the read early, but never before the first record.
  const size_t one = records->entries[0].size;
  EXPECT_EQ(ledger->ReadEventRecords(1, 10, one + 1)->entries.size(), 1u);
  EXPECT_EQ(ledger->ReadEventRecords(1, 10, 1)->entries.size(), 1u);
  EXPECT_EQ(ledger->ReadEventRecords(0, 2, 1 << 20)->entries.size(), 2u);
  EXPECT_TRUE(ledger->ReadEventRecords(4, 10, 1 << 20)->entries.empty());
}

TEST_P(LedgerContractTest, WritesQueuedAtShutdownAreCommitted) {
  constexpr int kWrites = 200;
  std::atomic<int> ok{0};
  {
    auto ledger = Open();
    for (int i = 0; i < kWrites; ++i) {
      ledger->CreateIntent(Intent(absl::StrCat("u", i)), [&](absl::Status s) {
        if (s.ok()) ++ok;
      });
    }
  }
  EXPECT_EQ(ok.load(), kWrites);
  auto ledger = Open();
  UploadQuery query;
  query.limit = 1000;
  EXPECT_EQ(ledger->ListUploads(query)->uploads.size(), size_t{kWrites});
}

TEST_P(LedgerContractTest, PruningByCountMovesFirstCursorAndNeverReusesOne) {
  SqliteLedger::Options options = Options();
  options.retain_max_events = 3;
  options.retain_max_age = absl::Hours(1);
  {
    auto ledger = Open(options);
    for (int i = 1; i <= 10; ++i) {
      std::string id = absl::StrCat("u", i);
      ASSERT_TRUE(CreateIntentSync(*ledger, Intent(id)).ok());
      ASSERT_TRUE(CompleteUploadSync(*ledger, id, Done()).ok());
    }
    ASSERT_TRUE(ledger->PruneNow().ok());
    EXPECT_EQ(*ledger->FirstCursor(), 8u);
    EXPECT_EQ(*ledger->LastCursor(), 10u);
    EXPECT_THAT(Cursors(*ledger->ReadEvents(0, 100)), ElementsAre(8, 9, 10));

    // Age retention then removes everything.
    clock_.Advance(absl::Hours(2));
    ASSERT_TRUE(ledger->PruneNow().ok());
    EXPECT_EQ(*ledger->FirstCursor(), 0u);
    EXPECT_EQ(*ledger->LastCursor(), 10u);
    EXPECT_TRUE(ledger->ReadEvents(0, 100)->empty());
    // The intent survives; a repeat completion rebuilds its event.
    auto again = CompleteUploadSync(*ledger, "u9", Done());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(again->appended);
    EXPECT_EQ(again->event.cursor(), 0u);
    EXPECT_EQ(again->event.upload_completed().upload().upload_id(), "u9");
  }
  auto ledger = Open(options);
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("new")).ok());
  auto result = CompleteUploadSync(*ledger, "new", Done());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->event.cursor(), 11u);
  EXPECT_EQ(*ledger->FirstCursor(), 11u);
}

TEST_P(LedgerContractTest, PruningByAgeKeepsRecentEvents) {
  SqliteLedger::Options options = Options();
  options.retain_max_age = absl::Hours(1);
  auto ledger = Open(options);
  for (int i = 1; i <= 5; ++i) {
    if (i == 4) clock_.Advance(absl::Minutes(90));
    std::string id = absl::StrCat("u", i);
    ASSERT_TRUE(CreateIntentSync(*ledger, Intent(id)).ok());
    ASSERT_TRUE(CompleteUploadSync(*ledger, id, Done()).ok());
  }
  auto deleted = ledger->PruneNow();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*ledger->FirstCursor(), 4u);
  EXPECT_THAT(Cursors(*ledger->ReadEvents(0, 100)), ElementsAre(4, 5));
}

TEST_P(LedgerContractTest, ListUploadsPagesNewestFirstAndFilters) {
  auto ledger = Open();
  for (int i = 0; i < 25; ++i) {
    Upload intent = Intent(absl::StrCat("u", i), i % 2 ? "odd" : "even",
                           i % 5 ? "app" : "batch");
    if (i >= 20) intent.set_key(absl::StrCat("avatars/", i));
    ASSERT_TRUE(CreateIntentSync(*ledger, intent).ok());
  }
  for (std::string id : {"u3", "u4", "u21"}) {
    ASSERT_TRUE(CompleteUploadSync(*ledger, id, Done()).ok());
  }
  auto ids = [](const UploadPage& page) {
    std::vector<std::string> out;
    for (const Upload& u : page.uploads) out.push_back(u.upload_id());
    return out;
  };

  UploadQuery query;
  query.limit = 10;
  std::vector<std::string> all;
  int pages = 0;
  do {
    auto page = ledger->ListUploads(query);
    ASSERT_TRUE(page.ok()) << page.status();
    for (auto& id : ids(*page)) all.push_back(id);
    query.before_seq = page->next_before_seq;
    ++pages;
  } while (query.before_seq != 0);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(all.size(), 25u);
  EXPECT_EQ(all.front(), "u24");
  EXPECT_EQ(all.back(), "u0");

  UploadQuery filtered;
  filtered.buckets = {"odd"};
  filtered.callers = {"batch"};
  EXPECT_THAT(ids(*ledger->ListUploads(filtered)), ElementsAre("u15", "u5"));
  filtered = UploadQuery();
  filtered.key_prefix = "avatars/";
  EXPECT_THAT(ids(*ledger->ListUploads(filtered)),
              ElementsAre("u24", "u23", "u22", "u21", "u20"));
  filtered.state = v1::UPLOAD_STATE_COMPLETED;
  EXPECT_THAT(ids(*ledger->ListUploads(filtered)), ElementsAre("u21"));
  filtered = UploadQuery();
  filtered.buckets = {"odd", "even"};
  filtered.state = v1::UPLOAD_STATE_COMPLETED;
  EXPECT_THAT(ids(*ledger->ListUploads(filtered)),
              ElementsAre("u21", "u4", "u3"));
  filtered.limit = 0;
  EXPECT_EQ(ledger->ListUploads(filtered).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(LedgerContractTest, ListenerHearsNewestCursorAfterCommit) {
  auto ledger = Open();
  absl::Mutex mu;
  std::vector<uint64_t> heard;
  std::vector<size_t> visible;  // events readable when the listener ran
  int id = ledger->AddListener([&](uint64_t cursor) {
    size_t n = ledger->ReadEvents(0, 100)->size();
    absl::MutexLock lock(&mu);
    heard.push_back(cursor);
    visible.push_back(n);
  });
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("a")).ok());  // no event
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("b")).ok());
  ASSERT_TRUE(CompleteUploadSync(*ledger, "a", Done()).ok());
  ASSERT_TRUE(CompleteUploadSync(*ledger, "a", Done()).ok());  // no event
  ASSERT_TRUE(ExpireUploadSync(*ledger, "b").ok());
  {
    // Listeners run after the `done` callbacks of their batch.
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](std::vector<uint64_t>* h) { return h->size() == 2; }, &heard));
  }
  ledger->RemoveListener(id);
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("c")).ok());
  ASSERT_TRUE(CompleteUploadSync(*ledger, "c", Done()).ok());
  ledger.reset();
  EXPECT_THAT(heard, ElementsAre(1u, 2u));
  EXPECT_THAT(visible, ElementsAre(1u, 2u));
}

}  // namespace
}  // namespace uploadbroker::ledger
