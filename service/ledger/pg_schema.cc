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

// Version 2: one marker row per batch that wrote something, inserted by the
// batch's own transaction (see pg_writer.h): after a lost COMMIT its
// presence says whether the batch committed. `fence` rows are inserted by
// the writer that lost the COMMIT, to learn the answer and to make sure the
// batch can no longer commit. Rows are deleted by the writer's next batch,
// and leftovers (a broker that died, fences) by an age sweep.
constexpr char kMigrateToV2[] = R"sql(
CREATE TABLE ub_batches (
  batch_id   uuid PRIMARY KEY,
  written_at timestamptz NOT NULL DEFAULT now(),
  fence      boolean NOT NULL DEFAULT false
);
UPDATE ub_schema SET version = 2;
)sql";

// Version 3: durable subscriptions (subscriptions.h). Times are Unix
// nanoseconds; `filter` is a serialized v1.EventFilter; `failures` is
// EncodeFailures' JSON. Delivery rows go with their subscription. The
// partial indexes serve the floor (first leased or waiting row) and the
// dead-letter listing without reading acknowledged rows.
constexpr char kMigrateToV3[] = R"sql(
CREATE TABLE ub_subscriptions (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  caller       text COLLATE "C" NOT NULL,
  name         text COLLATE "C" NOT NULL,
  filter       bytea NOT NULL,
  start_after  bigint NOT NULL,
  ack_deadline bigint NOT NULL,
  max_attempts integer NOT NULL,
  target       text COLLATE "C" NOT NULL,
  created_at   bigint NOT NULL,
  ack_floor    bigint NOT NULL,
  scanned      bigint NOT NULL,
  UNIQUE (caller, name)
);
CREATE TABLE ub_sub_deliveries (
  sub_id   bigint NOT NULL REFERENCES ub_subscriptions(id) ON DELETE CASCADE,
  cursor   bigint NOT NULL,
  status   smallint NOT NULL,
  attempts integer NOT NULL,
  holder   text NOT NULL,
  until_at bigint NOT NULL,
  failures text NOT NULL,
  PRIMARY KEY (sub_id, cursor)
);
CREATE INDEX ub_sub_deliveries_unsettled ON ub_sub_deliveries(sub_id, cursor)
  WHERE status IN (1, 3);
CREATE INDEX ub_sub_deliveries_dead ON ub_sub_deliveries(sub_id, cursor) WHERE status = 4;
CREATE TABLE ub_target_leases (
  name     text COLLATE "C" PRIMARY KEY,
  holder   text NOT NULL,
  until_at bigint NOT NULL
);
UPDATE ub_schema SET version = 3;
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
    int64_t found = 0;
    if (absl::string_view(PQgetvalue(exists.get(), 0, 0)) != "t") {
      UB_RETURN_IF_ERROR(conn.Exec(kSchemaV1, "creating the schema").status());
      found = 1;
    } else {
      UB_ASSIGN_OR_RETURN(PgResult version,
                          conn.Exec("SELECT max(version) FROM ub_schema",
                                    "reading the schema version"));
      found = PgInt64(version.get(), 0, 0);
    }
    if (found > kPgSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the PostgreSQL ledger has schema version ", found,
          "; this build only knows versions up to ", kPgSchemaVersion,
          ", refusing to use it (upgrade the broker)"));
    }
    if (found < 2) {
      UB_RETURN_IF_ERROR(conn.Exec(kMigrateToV2, "migrating the schema to version 2").status());
    }
    if (found < 3) {
      UB_RETURN_IF_ERROR(conn.Exec(kMigrateToV3, "migrating the schema to version 3").status());
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    (void)conn.Exec("ROLLBACK", "rolling back");
    return status;
  }
  return conn.Exec("COMMIT", "creating the schema").status();
}

}  // namespace uploadbroker::ledger
