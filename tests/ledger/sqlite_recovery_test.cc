// SqliteLedger failures and old files: a locked or unwritable database,
// corruption, schema versions and the v1 migration, bad options, malformed
// input.
#include "ledger/sqlite_ledger.h"
#include "ledger/sqlite_writer.h"

#include <sqlite3.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

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
