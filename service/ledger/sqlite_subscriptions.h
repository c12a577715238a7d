// Subscription tables on SQLite, internal to SqliteLedger: the statements
// SqliteWriter's subscription primitives and SqliteReaders' subscription
// reads share (engine.h; subscription_ops.h holds the rules).
//
// Tables (created on open when missing; rows of no other table change, so
// the schema version stays): subscriptions (one row each, keyed by an
// integer id and unique by (caller, name)), sub_deliveries (one row per
// delivered event per subscription) and target_leases (one row per push
// target). One process writes the file, so nothing needs row locks.
#ifndef UPLOADBROKER_LEDGER_SQLITE_SUBSCRIPTIONS_H_
#define UPLOADBROKER_LEDGER_SQLITE_SUBSCRIPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "ledger/engine.h"
#include "ledger/sqlite_util.h"

namespace uploadbroker::ledger {

// Creates the subscription tables and indexes when missing.
absl::Status CreateSqliteSubscriptionTables(sqlite3* db);

// Statements of one connection, prepared on first use and kept. Used by one
// thread at a time, like its connection.
class SqliteStmtCache {
 public:
  explicit SqliteStmtCache(sqlite3* db) : db_(db) {}
  // `sql` must be a string literal (it is the cache key).
  absl::StatusOr<sqlite3_stmt*> Get(const char* sql);
  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_;
  absl::flat_hash_map<const char*, StmtPtr> stmts_;
};

// Reads shared by the writer and the readers.
absl::StatusOr<SubscriptionRow> SqliteLoadSubscription(SqliteStmtCache& c,
                                                       const SubscriptionKey& key);
absl::StatusOr<std::vector<SubscriptionRow>> SqliteListSubscriptions(SqliteStmtCache& c,
                                                                     const std::string& caller);
absl::StatusOr<DeliveryCounts> SqliteCountDeliveries(SqliteStmtCache& c, int64_t id,
                                                     absl::Time now);
absl::StatusOr<std::vector<DeliveryRow>> SqliteDeadDeliveries(SqliteStmtCache& c, int64_t id,
                                                              uint64_t after, int limit);

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SQLITE_SUBSCRIPTIONS_H_
