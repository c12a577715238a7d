// SqliteLedger failures and old files: a locked or unwritable database,
// corruption, schema versions and the v1 migration, bad options, malformed
// input.
#include "ledger/sqlite_ledger.h"
#include "ledger/sqlite_writer.h"

#include <sqlite3.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
  auto expired = ledger->ClaimExpiredPending(kStart + absl::Hours(1), 10, absl::ZeroDuration());
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

// Version 1's DDL, as stored on disk by that version.
constexpr char kSchemaV1[] = R"sql(
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

// A version 1 ledger as a broker of that version left it: one PENDING, one
// COMPLETED and one EXPIRED intent; the events of the last two at cursors 5
// and 6, after cursors 1..4 were pruned and 7..9 handed out to events pruned
// since (AUTOINCREMENT's high-water mark is 9).
class V1LedgerTest : public SqliteLedgerTest {
 protected:
  void WriteV1(const std::string& path) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, kSchemaV1, nullptr, nullptr, nullptr), SQLITE_OK);
    completed_ = Intent("done");
    completed_.set_state(v1::UPLOAD_STATE_COMPLETED);
    *completed_.mutable_completion() = Done("etag-done");
    expired_ = Intent("gone");
    expired_.set_state(v1::UPLOAD_STATE_EXPIRED);
    pending_ = Intent("open");
    pending_.set_state(v1::UPLOAD_STATE_PENDING);
    int seq = 0;
    for (const Upload* u : {&completed_, &expired_, &pending_}) {
      Exec(db, "INSERT INTO intents VALUES (?1, ?2, 'app', 'photos', ?3, ?4, ?5, ?6)",
           {u->upload_id(), std::to_string(++seq), u->key(), std::to_string(u->state()),
            std::to_string(absl::ToUnixNanos(kStart + absl::Minutes(15))), u->SerializeAsString()});
    }
    done_event_.set_cursor(5);
    done_event_.set_type(v1::EVENT_TYPE_UPLOAD_COMPLETED);
    *done_event_.mutable_upload_completed()->mutable_upload() = completed_;
    gone_event_.set_cursor(6);
    gone_event_.set_type(v1::EVENT_TYPE_UPLOAD_EXPIRED);
    *gone_event_.mutable_upload_expired()->mutable_upload() = expired_;
    for (const Event* e : {&done_event_, &gone_event_}) {
      const Upload& u = e->has_upload_completed() ? e->upload_completed().upload()
                                                  : e->upload_expired().upload();
      Exec(db, "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5)",
           {std::to_string(e->cursor()), u.upload_id(), std::to_string(e->type()),
            std::to_string(absl::ToUnixNanos(kStart)), e->SerializeAsString()});
    }
    ASSERT_EQ(sqlite3_exec(db, "UPDATE sqlite_sequence SET seq = 9 WHERE name = 'events'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }

  // Everything WriteV1 stored is there, and the ledger works on: a repeat
  // of the completed upload appends nothing, the next cursor is 10.
  void ExpectMigrated(SqliteLedger& ledger) {
    auto done = ledger.GetUpload("done");
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*done, completed_)) << done->DebugString();
    EXPECT_EQ(ledger.GetUpload("gone")->state(), v1::UPLOAD_STATE_EXPIRED);
    EXPECT_EQ(ledger.GetUpload("open")->state(), v1::UPLOAD_STATE_PENDING);
    auto events = ledger.ReadEvents(0, 10);
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_EQ(events->size(), 2u);
    EXPECT_TRUE(MessageDifferencer::Equals((*events)[0], done_event_)) << (*events)[0].DebugString();
    EXPECT_TRUE(MessageDifferencer::Equals((*events)[1], gone_event_)) << (*events)[1].DebugString();
    EXPECT_EQ(ledger.FirstCursor().value_or(0), 5u);
    EXPECT_EQ(ledger.LastCursor().value_or(0), 9u);
    auto repeat = CompleteUploadSync(ledger, "done", Done("etag-done"));
    ASSERT_TRUE(repeat.ok()) << repeat.status();
    EXPECT_FALSE(repeat->appended);
    EXPECT_EQ(repeat->event.cursor(), 5u);
    EXPECT_EQ(CompleteUploadSync(ledger, "gone", Done()).status().code(),
              absl::StatusCode::kFailedPrecondition);
    auto next = CompleteUploadSync(ledger, "open", Done());
    ASSERT_TRUE(next.ok()) << next.status();
    EXPECT_EQ(next->event.cursor(), 10u) << "a pruned cursor was handed out again";
  }

  static int UserVersion(const std::string& path) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);  // read-write: it may have to recover the WAL
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr);
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }

  Upload completed_, expired_, pending_;
  Event done_event_, gone_event_;

 private:
  static void Exec(sqlite3* db, const char* sql, const std::vector<std::string>& args) {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    for (size_t i = 0; i < args.size(); ++i) {
      // The record (last) is a blob; the rest bind as text and take the
      // column's integer affinity where declared.
      if (i + 1 == args.size()) {
        sqlite3_bind_blob(st, static_cast<int>(i + 1), args[i].data(),
                          static_cast<int>(args[i].size()), SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_text(st, static_cast<int>(i + 1), args[i].c_str(), -1, SQLITE_TRANSIENT);
      }
    }
    ASSERT_EQ(sqlite3_step(st), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(st);
  }
};

TEST_F(V1LedgerTest, EventsAndSettledIntentsSurviveTheMigration) {
  WriteV1(path_);
  auto ledger = Open();
  ExpectMigrated(*ledger);
  ledger.reset();
  EXPECT_EQ(UserVersion(path_), SqliteWriter::kSchemaVersion);
}

// The migration is one transaction. A crash while its commit was being
// written leaves a WAL whose tail never reached the disk; whatever part of
// it survived, the next start must find the version 1 ledger intact and
// migrate it again. Simulated as LevelDB's fault-injection tests do: copy
// the files of a migrated ledger and cut the WAL at every frame boundary
// (and inside a frame) before the migration's commit frame ends.
TEST_F(V1LedgerTest, ACrashDuringTheMigrationLosesNothing) {
  WriteV1(path_);
  std::string db_image, wal_image;
  {
    auto ledger = Open();  // migrates; the transaction sits in the WAL
    auto read = [](const std::string& p) {
      std::ifstream in(p, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    db_image = read(path_);
    wal_image = read(path_ + "-wal");
  }
  ASSERT_GT(wal_image.size(), 32u) << "the migration did not go through the WAL";
  auto be32 = [&](size_t at) {
    const auto* b = reinterpret_cast<const unsigned char*>(wal_image.data() + at);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  };
  const size_t frame = 24 + be32(8);  // frame header + page size
  // The migration's commit frame: the first whose "database size after
  // commit" field is non-zero.
  size_t commit_end = 0;
  for (size_t at = 32; at + frame <= wal_image.size(); at += frame) {
    if (be32(at + 4) != 0) {
      commit_end = at + frame;
      break;
    }
  }
  ASSERT_GT(commit_end, 0u) << "no commit frame in the WAL";
  std::vector<size_t> cuts = {0, 16, 32 + frame / 2, commit_end - 1};
  for (size_t at = 32; at < commit_end; at += frame) cuts.push_back(at);
  for (size_t cut : cuts) {
    SCOPED_TRACE(absl::StrCat("WAL cut at byte ", cut, " of ", commit_end));
    testing::TempDir crash;
    const std::string path = crash.File("ledger.db");
    std::ofstream(path, std::ios::binary) << db_image;
    std::ofstream(path + "-wal", std::ios::binary) << wal_image.substr(0, cut);
    EXPECT_EQ(UserVersion(path), 1) << "the cut WAL must not hold a committed migration";
    SqliteLedger::Options options = Options();
    options.path = path;
    auto ledger = SqliteLedger::Create(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ExpectMigrated(**ledger);
  }
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
