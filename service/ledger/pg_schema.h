// The PostgreSQL ledger's schema, created or migrated at startup. Internal
// to ledger/.
//
// EnsurePgSchema runs in one transaction under a transaction-level advisory
// lock, so brokers starting together create the schema once. It refuses a
// database whose schema is newer than this build knows (FailedPrecondition
// naming both versions). An older schema is migrated in the same
// transaction; brokers of an older build then refuse the database at their
// next start (upgrade them all).
#ifndef UPLOADBROKER_LEDGER_PG_SCHEMA_H_
#define UPLOADBROKER_LEDGER_PG_SCHEMA_H_

#include "absl/status/status.h"
#include "ledger/pg_conn.h"

namespace uploadbroker::ledger {

// 1: intents, events, the cursor counter. 2: + ub_batches (commit markers).
// 3: + subscriptions, their delivery rows, target leases.
inline constexpr int kPgSchemaVersion = 3;
// The NOTIFY channel a commit that appended events signals, with the newest
// cursor as payload.
inline constexpr char kPgEventChannel[] = "ub_events";

absl::Status EnsurePgSchema(PgConn& conn);

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_PG_SCHEMA_H_
