#include "ledger/sqlite_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ledger/transitions.h"

namespace uploadbroker::ledger {
namespace {

// Schema version 3. Times are Unix nanoseconds; records are serialized
// uploadbroker.v1.Upload / uploadbroker.v1.Event messages, and the columns
// beside them are copies kept for indexing. An intent insert touches four
// B-trees: the table (keyed by its creation order), upload_id, and the two
// indexes the sweeper and ListUploads need.
constexpr char kIntentsV2[] = R"sql(
CREATE TABLE intents (
  seq        INTEGER PRIMARY KEY,      -- creation order (the rowid), for paging
  upload_id  TEXT NOT NULL UNIQUE,
  caller     TEXT NOT NULL,
  bucket     TEXT NOT NULL,
  key        TEXT NOT NULL,
  state      INTEGER NOT NULL,
  expires_at INTEGER,                  -- NULL: never expires
  record     BLOB NOT NULL
);
)sql";
constexpr char kIntentIndexesV2[] = R"sql(
CREATE INDEX intents_by_state_expiry ON intents(state, expires_at);
CREATE INDEX intents_by_bucket ON intents(bucket);
)sql";
// Version 3 adds when an intent was settled (COMPLETED or EXPIRED), for
// retention. Intents settled before the migration take their expiry (or 0)
// as an upper bound of when that was.
constexpr char kSettledV3[] = R"sql(
ALTER TABLE intents ADD COLUMN settled_at INTEGER;  -- NULL while PENDING
UPDATE intents SET settled_at = IFNULL(expires_at, 0) WHERE state != 1;
CREATE INDEX intents_by_settled ON intents(settled_at) WHERE settled_at IS NOT NULL;
)sql";
// Any version: intents by (bucket, key), so the callback path's look-up of
// the uploads naming one key (completion::CheckWrittenUnder) reads a few
// rows, not the bucket's. Created on open when missing; the schema's rows
// are unchanged, so no version step.
constexpr char kBucketKeyIndex[] =
    "CREATE INDEX IF NOT EXISTS intents_by_bucket_key ON intents(bucket, key)";
constexpr char kEventsV1[] = R"sql(
CREATE TABLE events (
  -- AUTOINCREMENT: a cursor is never reused, even after pruning.
  cursor       INTEGER PRIMARY KEY AUTOINCREMENT,
  upload_id    TEXT NOT NULL,
  type         INTEGER NOT NULL,
  committed_at INTEGER NOT NULL,
  record       BLOB NOT NULL,
  UNIQUE (upload_id, type)
);
)sql";

// Version 1 keyed intents by upload_id with a separate UNIQUE seq column and
// indexed caller too; version 2 keeps the same rows, seq becoming the rowid.
// Runs inside InitSchema's transaction, so a crash midway changes nothing.
constexpr char kMigrateV1ToV2[] = R"sql(
DROP INDEX intents_by_state_expiry;
DROP INDEX intents_by_caller;
DROP INDEX intents_by_bucket;
ALTER TABLE intents RENAME TO intents_v1;
)sql";
constexpr char kCopyV1Intents[] = R"sql(
INSERT INTO intents(seq, upload_id, caller, bucket, key, state, expires_at, record)
  SELECT seq, upload_id, caller, bucket, key, state, expires_at, record
  FROM intents_v1 ORDER BY seq;
DROP TABLE intents_v1;
)sql";

absl::Status CreateSchemaV2(sqlite3* db) {
  UB_RETURN_IF_ERROR(Exec(db, kIntentsV2, "creating the intents table"));
  UB_RETURN_IF_ERROR(Exec(db, kIntentIndexesV2, "creating the intents indexes"));
  return Exec(db, kEventsV1, "creating the events table");
}

absl::Status MigrateV2ToV3(sqlite3* db) {
  return Exec(db, kSettledV3, "migrating schema 2 to 3");
}

absl::Status MigrateV1ToV2(sqlite3* db) {
  UB_RETURN_IF_ERROR(Exec(db, kMigrateV1ToV2, "migrating schema 1 to 2"));
  UB_RETURN_IF_ERROR(Exec(db, kIntentsV2, "migrating schema 1 to 2"));
  UB_RETURN_IF_ERROR(Exec(db, kCopyV1Intents, "migrating schema 1 to 2: copying intents"));
  return Exec(db, kIntentIndexesV2, "migrating schema 1 to 2: indexing intents");
}

absl::StatusOr<int64_t> QueryInt(sqlite3* db, const char* sql) {
  UB_ASSIGN_OR_RETURN(StmtPtr stmt, Prepare(db, sql));
  int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return SqliteError(db, rc, sql);
  return sqlite3_column_int64(stmt.get(), 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteWriter>> SqliteWriter::Open(
    const std::string& path, absl::Duration busy_timeout) {
  UB_ASSIGN_OR_RETURN(DbPtr db, OpenDb(path, /*create=*/true, busy_timeout));
  std::unique_ptr<SqliteWriter> writer(new SqliteWriter(std::move(db)));
  UB_RETURN_IF_ERROR(writer->Init());
  return writer;
}

absl::Status SqliteWriter::Init() {
  sqlite3* db = db_.get();
  {
    UB_ASSIGN_OR_RETURN(StmtPtr wal, Prepare(db, "PRAGMA journal_mode=WAL"));
    int rc = sqlite3_step(wal.get());
    if (rc != SQLITE_ROW) return SqliteError(db, rc, "enabling WAL mode");
    std::string mode(ColumnBytes(wal.get(), 0));
    if (mode != "wal") {
      return absl::UnavailableError(absl::StrCat(
          "ledger database ", sqlite3_db_filename(db, "main"),
          " could not switch to WAL mode (still \"", mode,
          "\"); is its directory writable?"));
    }
  }
  UB_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous=FULL"));
  UB_RETURN_IF_ERROR(Exec(db, "PRAGMA journal_size_limit=67108864"));
  UB_RETURN_IF_ERROR(InitSchema());
  return PrepareStatements();
}

absl::Status SqliteWriter::InitSchema() {
  sqlite3* db = db_.get();
  // BEGIN IMMEDIATE takes the write lock, so this also proves the file is
  // writable and that no other process is creating the schema meanwhile.
  UB_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  absl::StatusOr<int64_t> version = QueryInt(db, "PRAGMA user_version");
  absl::Status status = version.status();
  const bool upgrade = status.ok() && *version >= 0 && *version < kSchemaVersion;
  if (status.ok() && *version == 0) {
    status = CreateSchemaV2(db);
  } else if (status.ok() && *version == 1) {
    status = MigrateV1ToV2(db);
  }
  if (status.ok() && upgrade) {
    status = MigrateV2ToV3(db);
  } else if (status.ok() && *version != kSchemaVersion) {
    status = absl::FailedPreconditionError(absl::StrCat(
        "ledger database ", sqlite3_db_filename(db, "main"),
        " has schema version ", *version, "; this build only knows version ",
        kSchemaVersion, ", refusing to open it"));
  }
  if (status.ok() && upgrade) {
    status = Exec(db, absl::StrCat("PRAGMA user_version = ", kSchemaVersion).c_str());
  }
  if (status.ok()) status = Exec(db, kBucketKeyIndex, "indexing intents by bucket and key");
  if (status.ok()) status = CreateSqliteSubscriptionTables(db);
  if (status.ok()) return Exec(db, "COMMIT");
  Rollback();
  return status;
}

absl::Status SqliteWriter::PrepareStatements() {
  sqlite3* db = db_.get();
  struct {
    StmtPtr* stmt;
    const char* sql;
  } const statements[] = {
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&savepoint_, "SAVEPOINT op"},
      {&release_, "RELEASE op"},
      {&rollback_to_, "ROLLBACK TO op"},
      {&last_seq_, "SELECT seq FROM sqlite_sequence WHERE name = 'events'"},
      {&insert_intent_,
       "INSERT INTO intents"
       "(upload_id, caller, bucket, key, state, expires_at, record) "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      {&select_intent_, "SELECT record FROM intents WHERE upload_id = ?1"},
      {&update_intent_,
       "UPDATE intents SET state = ?2, record = ?3, settled_at = ?4 "
       "WHERE upload_id = ?1"},
      {&insert_event_,
       "INSERT INTO events(cursor, upload_id, type, committed_at, record) "
       "VALUES (?1, ?2, ?3, ?4, ?5)"},
      {&select_event_,
       "SELECT record FROM events WHERE upload_id = ?1 AND type = ?2"},
      {&first_cursor_, "SELECT MIN(cursor) FROM events"},
      {&scan_old_,
       "SELECT cursor, committed_at FROM events WHERE cursor >= ?1 "
       "ORDER BY cursor LIMIT ?2"},
      {&delete_events_, "DELETE FROM events WHERE cursor <= ?1"},
      {&delete_settled_,
       "DELETE FROM intents WHERE seq IN (SELECT seq FROM intents "
       "WHERE settled_at IS NOT NULL AND settled_at < ?1 "
       "ORDER BY settled_at LIMIT ?2)"},
  };
  for (const auto& s : statements) {
    UB_ASSIGN_OR_RETURN(*s.stmt, Prepare(db, s.sql));
  }
  subs_ = std::make_unique<SqliteStmtCache>(db);
  return absl::OkStatus();
}

absl::Status SqliteWriter::StepDone(sqlite3_stmt* stmt, const char* what) {
  ScopedReset reset(stmt);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, what);
  return absl::OkStatus();
}

absl::Status SqliteWriter::Begin() {
  UB_RETURN_IF_ERROR(StepDone(begin_.get(), "begin transaction"));
  ScopedReset reset(last_seq_.get());
  int rc = sqlite3_step(last_seq_.get());
  if (rc == SQLITE_ROW) {
    tx_last_cursor_ = static_cast<uint64_t>(sqlite3_column_int64(last_seq_.get(), 0));
  } else if (rc == SQLITE_DONE) {
    tx_last_cursor_ = 0;  // no event was ever appended
  } else {
    absl::Status status = SqliteError(db_.get(), rc, "reading the last cursor");
    Rollback();
    return status;
  }
  op_last_cursor_ = tx_last_cursor_;
  return absl::OkStatus();
}

absl::Status SqliteWriter::Commit() { return StepDone(commit_.get(), "commit"); }

void SqliteWriter::Rollback() {
  if (sqlite3_get_autocommit(db_.get()) == 0) {
    // Nothing more to do if even this fails: the connection stays usable and
    // SQLite discards the transaction when the next one begins or it closes.
    (void)Exec(db_.get(), "ROLLBACK");
  }
}

absl::Status SqliteWriter::Savepoint() {
  op_last_cursor_ = tx_last_cursor_;
  return StepDone(savepoint_.get(), "savepoint");
}

absl::Status SqliteWriter::ReleaseSavepoint() {
  UB_RETURN_IF_ERROR(StepDone(release_.get(), "release savepoint"));
  tx_last_cursor_ = op_last_cursor_;
  return absl::OkStatus();
}

absl::Status SqliteWriter::RollbackSavepoint(const absl::Status& cause) {
  op_last_cursor_ = tx_last_cursor_;
  if (sqlite3_get_autocommit(db_.get()) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "SQLite aborted the batch transaction after: ", cause.message()));
  }
  UB_RETURN_IF_ERROR(StepDone(rollback_to_.get(), "rollback to savepoint"));
  return StepDone(release_.get(), "release savepoint");
}

absl::StatusOr<std::vector<absl::Status>> SqliteWriter::InsertIntents(
    const std::vector<const Upload*>& intents) {
  std::vector<absl::Status> stored;
  stored.reserve(intents.size());
  for (const Upload* intent : intents) {
    absl::Status status = InsertIntent(*intent);
    if (!status.ok() && !absl::IsAlreadyExists(status)) return status;
    stored.push_back(std::move(status));
  }
  return stored;
}

absl::Status SqliteWriter::InsertIntent(const Upload& intent) {
  std::string record = intent.SerializeAsString();
  sqlite3_stmt* stmt = insert_intent_.get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, intent.upload_id());
  BindText(stmt, 2, intent.caller());
  BindText(stmt, 3, intent.bucket());
  BindText(stmt, 4, intent.key());
  sqlite3_bind_int(stmt, 5, intent.state());
  if (intent.has_expires_at()) {
    sqlite3_bind_int64(stmt, 6, ToUnixNanos(intent.expires_at()));
  } else {
    sqlite3_bind_null(stmt, 6);
  }
  BindBlob(stmt, 7, record);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_CONSTRAINT_UNIQUE) {
    return absl::AlreadyExistsError(
        absl::StrCat("upload_id ", intent.upload_id(), " already exists"));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "insert intent");
  return absl::OkStatus();
}

absl::StatusOr<Upload> SqliteWriter::LockIntent(const std::string& upload_id) {
  sqlite3_stmt* stmt = select_intent_.get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, upload_id);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(absl::StrCat("no upload ", upload_id));
  }
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "read intent");
  Upload upload;
  UB_RETURN_IF_ERROR(ParseStored(ColumnBytes(stmt, 0), upload, absl::StrCat("upload ", upload_id)));
  return upload;
}

absl::StatusOr<Event> SqliteWriter::LoadCompletedEvent(const std::string& upload_id) {
  sqlite3_stmt* stmt = select_event_.get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, upload_id);
  sqlite3_bind_int(stmt, 2, v1::EVENT_TYPE_UPLOAD_COMPLETED);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(absl::StrCat("no event for upload ", upload_id));
  }
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "read event");
  Event event;
  UB_RETURN_IF_ERROR(
      ParseStored(ColumnBytes(stmt, 0), event, absl::StrCat("the event of upload ", upload_id)));
  return event;
}

absl::Status SqliteWriter::Settle(const Upload& upload, absl::Time now, Event& event) {
  {
    std::string record = upload.SerializeAsString();
    sqlite3_stmt* stmt = update_intent_.get();
    BindText(stmt, 1, upload.upload_id());
    sqlite3_bind_int(stmt, 2, upload.state());
    BindBlob(stmt, 3, record);
    sqlite3_bind_int64(stmt, 4, absl::ToUnixNanos(now));
    UB_RETURN_IF_ERROR(StepDone(stmt, "update intent"));
  }
  // The single writer knows the next rowid, so the record can carry its own
  // cursor without a second write.
  uint64_t cursor = op_last_cursor_ + 1;
  event.set_cursor(cursor);
  std::string record = event.SerializeAsString();
  sqlite3_stmt* stmt = insert_event_.get();
  sqlite3_bind_int64(stmt, 1, static_cast<int64_t>(cursor));
  BindText(stmt, 2, upload.upload_id());
  sqlite3_bind_int(stmt, 3, event.type());
  sqlite3_bind_int64(stmt, 4, ToUnixNanos(event.committed_at()));
  BindBlob(stmt, 5, record);
  UB_RETURN_IF_ERROR(StepDone(stmt, "append event"));
  op_last_cursor_ = cursor;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> SqliteWriter::Prune(const Retention& retention,
                                            absl::Time now, int max_rows) {
  UB_ASSIGN_OR_RETURN(int64_t deleted, PruneEvents(retention, now, max_rows));
  if (retention.settled_max_age <= absl::ZeroDuration() || max_rows <= 0) {
    return deleted;
  }
  sqlite3_stmt* stmt = delete_settled_.get();
  sqlite3_bind_int64(stmt, 1, absl::ToUnixNanos(now - retention.settled_max_age));
  sqlite3_bind_int(stmt, 2, max_rows);
  UB_RETURN_IF_ERROR(StepDone(stmt, "prune settled intents"));
  return deleted + sqlite3_changes64(db_.get());
}

absl::StatusOr<int64_t> SqliteWriter::PruneEvents(const Retention& retention,
                                                  absl::Time now, int max_rows) {
  if (retention.max_events <= 0 && retention.max_age <= absl::ZeroDuration()) {
    return 0;
  }
  uint64_t first = 0;
  {
    ScopedReset reset(first_cursor_.get());
    int rc = sqlite3_step(first_cursor_.get());
    if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "read first cursor");
    first = static_cast<uint64_t>(sqlite3_column_int64(first_cursor_.get(), 0));
  }
  if (first == 0 || max_rows <= 0) return 0;  // empty log
  // Retention only ever removes a prefix of the log, at most max_rows long.
  const uint64_t last_allowed = first + static_cast<uint64_t>(max_rows) - 1;
  uint64_t bound = 0;  // delete cursors <= bound
  const uint64_t last = op_last_cursor_;
  if (retention.max_events > 0 &&
      last - first + 1 > static_cast<uint64_t>(retention.max_events)) {
    bound = last - static_cast<uint64_t>(retention.max_events);
  }
  if (retention.max_age > absl::ZeroDuration() && bound < last_allowed) {
    const int64_t cutoff = absl::ToUnixNanos(now - retention.max_age);
    sqlite3_stmt* stmt = scan_old_.get();
    ScopedReset reset(stmt);
    sqlite3_bind_int64(stmt, 1, static_cast<int64_t>(first));
    sqlite3_bind_int(stmt, 2, max_rows);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW &&
           sqlite3_column_int64(stmt, 1) < cutoff) {
      bound = std::max(bound,
                       static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return SqliteError(db_.get(), rc, "scan old events");
    }
  }
  bound = std::min(bound, last_allowed);
  if (bound < first) return 0;
  sqlite3_bind_int64(delete_events_.get(), 1, static_cast<int64_t>(bound));
  UB_RETURN_IF_ERROR(StepDone(delete_events_.get(), "prune events"));
  return static_cast<int64_t>(sqlite3_changes64(db_.get()));
}

}  // namespace uploadbroker::ledger
