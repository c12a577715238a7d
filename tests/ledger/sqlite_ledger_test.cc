#include "ledger/sqlite_ledger.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace uploadbroker::ledger {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "ledger_test.XXXXXX").string();
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Upload Intent(const std::string& id, const std::string& bucket = "photos",
              const std::string& caller = "app",
              absl::Time expires_at = kStart + absl::Minutes(15)) {
  Upload upload;
  upload.set_upload_id(id);
  upload.set_caller(caller);
  upload.set_bucket(bucket);
  upload.set_key("users/" + id);
  upload.set_max_size(1 << 20);
  (*upload.mutable_metadata())["order"] = id;
  upload.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(expires_at));
  upload.set_method(v1::UPLOAD_METHOD_POST);
  return upload;
}

Completion Done(const std::string& etag = "etag-1") {
  Completion completion;
  completion.set_size(42);
  completion.set_etag(etag);
  completion.set_source(v1::COMPLETION_SOURCE_CALLBACK);
  return completion;
}

std::vector<uint64_t> Cursors(const std::vector<Event>& events) {
  std::vector<uint64_t> cursors;
  for (const Event& e : events) cursors.push_back(e.cursor());
  return cursors;
}

class SqliteLedgerTest : public ::testing::Test {
 protected:
  SqliteLedger::Options Options() {
    SqliteLedger::Options options;
    options.path = path_;
    options.clock = &clock_;
    return options;
  }
  std::unique_ptr<SqliteLedger> Open() { return Open(Options()); }
  std::unique_ptr<SqliteLedger> Open(SqliteLedger::Options options) {
    auto ledger = SqliteLedger::Create(std::move(options));
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return std::move(ledger).value();
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/ledger.db";
  common::FakeClock clock_{kStart};
};

TEST_F(SqliteLedgerTest, CreatedIntentReadsBackPending) {
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

TEST_F(SqliteLedgerTest, DuplicateIdFailsAloneWithinItsBatch) {
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
  all_done.WaitForNotification();

  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_THAT(dup.message(), HasSubstr("a"));
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

TEST_F(SqliteLedgerTest, CompleteAppendsOneEventCarryingItsCursor) {
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

TEST_F(SqliteLedgerTest, RepeatedCompleteReturnsTheEarlierEvent) {
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

TEST_F(SqliteLedgerTest, CompleteUnknownUploadIsNotFound) {
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
  finished.WaitForNotification();
  return result;
}

TEST_F(SqliteLedgerTest, CompletionCheckSeesTheStoredIntentAndCanRefuse) {
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

TEST_F(SqliteLedgerTest, ExpireAppendsEventAndEndsTheIntent) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("u1")).ok());

  auto event = ExpireUploadSync(*ledger, "u1");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->cursor(), 1u);
  EXPECT_EQ(event->type(), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EXPECT_EQ(event->upload_expired().upload().state(),
            v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(ledger->GetUpload("u1")->state(), v1::UPLOAD_STATE_EXPIRED);

  EXPECT_EQ(ExpireUploadSync(*ledger, "u1").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CompleteUploadSync(*ledger, "u1", Done()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ExpireUploadSync(*ledger, "ghost").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ledger->ReadEvents(0, 10)->size(), 1u);
}

TEST_F(SqliteLedgerTest, ListExpiredPendingOldestFirst) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("late", "b", "c", kStart + absl::Hours(2))).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("old", "b", "c", kStart + absl::Minutes(1))).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("mid", "b", "c", kStart + absl::Minutes(5))).ok());
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("done", "b", "c", kStart)).ok());
  ASSERT_TRUE(CompleteUploadSync(*ledger, "done", Done()).ok());

  auto due = ledger->ListExpiredPending(kStart + absl::Minutes(5), 10);
  ASSERT_TRUE(due.ok()) << due.status();
  std::vector<std::string> ids;
  for (const Upload& u : *due) ids.push_back(u.upload_id());
  EXPECT_THAT(ids, ElementsAre("old", "mid"));
  EXPECT_EQ(ledger->ListExpiredPending(kStart + absl::Hours(3), 1)->size(), 1u);
}

TEST_F(SqliteLedgerTest, ConcurrentWritersGetGapFreeDurableCursors) {
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

TEST_F(SqliteLedgerTest, ReopenKeepsDataAndContinuesCursors) {
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

TEST_F(SqliteLedgerTest, EventRecordsAreTheStoredEventsUnparsed) {
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

TEST_F(SqliteLedgerTest, WritesQueuedAtShutdownAreCommitted) {
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

TEST_F(SqliteLedgerTest, PruningByCountMovesFirstCursorAndNeverReusesOne) {
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

TEST_F(SqliteLedgerTest, PruningByAgeKeepsRecentEvents) {
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

TEST_F(SqliteLedgerTest, ListUploadsPagesNewestFirstAndFilters) {
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
  filtered.caller = "batch";
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

TEST_F(SqliteLedgerTest, ListenerHearsNewestCursorAfterCommit) {
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

TEST_F(SqliteLedgerTest, LockedDatabaseFailsTheBatchAndTurnsUnhealthy) {
  SqliteLedger::Options options = Options();
  options.busy_timeout = absl::Milliseconds(50);
  auto ledger = Open(options);
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("a")).ok());

  // Another process holds the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr),
            SQLITE_OK);
  absl::Status status = CreateIntentSync(*ledger, Intent("b"));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr(path_));
  EXPECT_THAT(status.message(), HasSubstr("locked"));
  EXPECT_FALSE(ledger->Healthy());

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(other);
  EXPECT_EQ(ledger->GetUpload("b").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(CreateIntentSync(*ledger, Intent("b")).ok());
  EXPECT_TRUE(ledger->Healthy());
}

TEST_F(SqliteLedgerTest, UnwritablePathIsAClearError) {
  // A path whose "directory" is a regular file cannot be created, even by
  // root.
  std::string file = dir_.path() + "/plain-file";
  std::ofstream(file) << "x";
  SqliteLedger::Options options = Options();
  options.path = file + "/ledger.db";
  auto ledger = SqliteLedger::Create(options);
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(ledger.status().message(), HasSubstr(options.path));

  options.path = dir_.path() + "/missing/ledger.db";
  ledger = SqliteLedger::Create(options);
  ASSERT_FALSE(ledger.ok());
  EXPECT_THAT(ledger.status().message(), HasSubstr(options.path));
}

TEST_F(SqliteLedgerTest, CorruptFileIsDataLoss) {
  std::ofstream(path_) << std::string(8192, 'z');
  auto ledger = SqliteLedger::Create(Options());
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(ledger.status().message(), HasSubstr(path_));
}

TEST_F(SqliteLedgerTest, UnknownSchemaVersionIsRefused) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 7", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto ledger = SqliteLedger::Create(Options());
  ASSERT_FALSE(ledger.ok());
  EXPECT_EQ(ledger.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ledger.status().message(), HasSubstr("schema version 7"));
}

// A ledger written by schema version 1 (the DDL below is that version's,
// as stored on disk) opens, migrated in place, with nothing lost.
TEST_F(SqliteLedgerTest, VersionOneLedgerIsMigratedWithEverythingKept) {
  constexpr char kV1[] = R"sql(
CREATE TABLE intents (upload_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE,
  caller TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
  state INTEGER NOT NULL, expires_at INTEGER, record BLOB NOT NULL);
CREATE INDEX intents_by_state_expiry ON intents(state, expires_at, seq);
CREATE INDEX intents_by_caller ON intents(caller, seq);
CREATE INDEX intents_by_bucket ON intents(bucket, seq);
CREATE TABLE events (cursor INTEGER PRIMARY KEY AUTOINCREMENT,
  upload_id TEXT NOT NULL, type INTEGER NOT NULL, committed_at INTEGER NOT NULL,
  record BLOB NOT NULL, UNIQUE (upload_id, type));
PRAGMA user_version = 1;
)sql";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, kV1, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO intents VALUES (?1, ?2, 'app', 'photos', ?3, 1, ?4, ?5)",
                               -1, &insert, nullptr),
            SQLITE_OK);
  // Stored out of id order: seq, not upload_id, is the listing order.
  const std::vector<std::pair<std::string, int>> rows = {{"zz", 1}, {"aa", 2}};
  for (const auto& [id, seq] : rows) {
    Upload u = Intent(id);
    u.set_state(v1::UPLOAD_STATE_PENDING);
    std::string record = u.SerializeAsString();
    sqlite3_bind_text(insert, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(insert, 2, seq);
    sqlite3_bind_text(insert, 3, u.key().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 4, absl::ToUnixNanos(kStart + absl::Minutes(15)));
    sqlite3_bind_blob(insert, 5, record.data(), static_cast<int>(record.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);

  auto ledger = Open();
  auto zz = ledger->GetUpload("zz");
  ASSERT_TRUE(zz.ok()) << zz.status();
  EXPECT_EQ(zz->metadata().at("order"), "zz");
  EXPECT_EQ(CreateIntentSync(*ledger, Intent("aa")).code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("new")).ok());
  UploadQuery query;
  query.limit = 10;
  auto page = ledger->ListUploads(query);
  ASSERT_TRUE(page.ok()) << page.status();
  std::vector<std::string> ids;
  for (const Upload& u : page->uploads) ids.push_back(u.upload_id());
  EXPECT_THAT(ids, ElementsAre("new", "aa", "zz"));  // newest first
  auto expired = ledger->ListExpiredPending(kStart + absl::Hours(1), 10);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->size(), 3u);
  ASSERT_TRUE(CompleteUploadSync(*ledger, "zz", Done()).ok());
  EXPECT_EQ(ledger->GetUpload("zz")->state(), v1::UPLOAD_STATE_COMPLETED);
  ledger.reset();

  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* version = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &version, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(version), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(version, 0), SqliteWriter::kSchemaVersion);
  sqlite3_finalize(version);
  sqlite3_close(db);
}

TEST_F(SqliteLedgerTest, BadOptionsAreRejected) {
  SqliteLedger::Options options = Options();
  options.clock = nullptr;
  EXPECT_EQ(SqliteLedger::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = Options();
  options.max_batch = 0;
  EXPECT_EQ(SqliteLedger::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteLedgerTest, MalformedIntentIsInvalidArgument) {
  auto ledger = Open();
  EXPECT_EQ(CreateIntentSync(*ledger, Intent("")).code(),
            absl::StatusCode::kInvalidArgument);
  Upload completed = Intent("c");
  completed.set_state(v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(CreateIntentSync(*ledger, completed).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace uploadbroker::ledger
