#include "ledger/pg_schema.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace uploadbroker::ledger {
namespace {

// Any constant, the same in every broker: the advisory lock key that
// serializes schema creation and migration.
constexpr char kLockSchema[] = "SELECT pg_advisory_xact_lock(7153420117)";

// Version 1. Times are Unix nanoseconds; records are serialized
// uploadbroker.v1.Upload / Event messages, and the columns beside them are
// copies kept for indexing. Text columns compare bytewise (COLLATE "C"), so
// key-prefix ranges match what SQLite does.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE ub_intents (
  seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upload_id  text COLLATE "C" NOT NULL UNIQUE,
  caller     text COLLATE "C" NOT NULL,
  bucket     text COLLATE "C" NOT NULL,
  key        text COLLATE "C" NOT NULL,
  state      smallint NOT NULL,
  expires_at bigint,
  settled_at bigint,
  probe_until bigint,                 -- a reconciler's claim (ClaimExpiredPending)
  record     bytea NOT NULL
);
CREATE INDEX ub_intents_by_state_expiry ON ub_intents(state, expires_at);
CREATE INDEX ub_intents_by_bucket ON ub_intents(bucket);
CREATE INDEX ub_intents_by_settled ON ub_intents(settled_at) WHERE settled_at IS NOT NULL;
CREATE TABLE ub_events (
  cursor       bigint PRIMARY KEY,
  upload_id    text COLLATE "C" NOT NULL,
  type         smallint NOT NULL,
  committed_at bigint NOT NULL,
  record       bytea NOT NULL,
  UNIQUE (upload_id, type)
);
-- The newest cursor ever assigned; its row lock orders commits.
CREATE TABLE ub_event_counter (
  only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  last_cursor bigint NOT NULL
);
INSERT INTO ub_event_counter VALUES (true, 0);
CREATE TABLE ub_schema (version integer NOT NULL);
INSERT INTO ub_schema VALUES (1);
)sql";

}  // namespace

absl::Status EnsurePgSchema(PgConn& conn) {
  UB_RETURN_IF_ERROR(conn.Exec("BEGIN", "creating the schema").status());
  absl::Status status = [&]() -> absl::Status {
    UB_RETURN_IF_ERROR(conn.Exec(kLockSchema, "locking the schema").status());
    UB_ASSIGN_OR_RETURN(
        PgResult exists,
        conn.Exec("SELECT to_regclass('ub_schema') IS NOT NULL",
                  "reading the schema version"));
    if (absl::string_view(PQgetvalue(exists.get(), 0, 0)) != "t") {
      return conn.Exec(kSchemaV1, "creating the schema").status();
    }
    UB_ASSIGN_OR_RETURN(PgResult version,
                        conn.Exec("SELECT max(version) FROM ub_schema",
                                  "reading the schema version"));
    const int64_t found = PgInt64(version.get(), 0, 0);
    if (found > kPgSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the PostgreSQL ledger has schema version ", found,
          "; this build only knows versions up to ", kPgSchemaVersion,
          ", refusing to use it (upgrade the broker)"));
    }
    return absl::OkStatus();  // version 1 is the only one so far
  }();
  if (!status.ok()) {
    (void)conn.Exec("ROLLBACK", "rolling back");
    return status;
  }
  return conn.Exec("COMMIT", "creating the schema").status();
}

}  // namespace uploadbroker::ledger
