#include "ledger/sqlite_subscriptions.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ledger/sqlite_writer.h"
#include "ledger/transitions.h"

namespace uploadbroker::ledger {
namespace {

// Times are Unix nanoseconds; `filter` is a serialized v1.EventFilter;
// `failures` is EncodeFailures' text.
constexpr char kSubscriptionTables[] = R"sql(
CREATE TABLE IF NOT EXISTS subscriptions (
  id           INTEGER PRIMARY KEY,
  caller       TEXT NOT NULL,
  name         TEXT NOT NULL,
  filter       BLOB NOT NULL,
  start_after  INTEGER NOT NULL,
  ack_deadline INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  target       TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  ack_floor    INTEGER NOT NULL,
  scanned      INTEGER NOT NULL,
  UNIQUE (caller, name)
);
CREATE TABLE IF NOT EXISTS sub_deliveries (
  sub_id   INTEGER NOT NULL,
  cursor   INTEGER NOT NULL,
  status   INTEGER NOT NULL,       -- DeliveryStatus
  attempts INTEGER NOT NULL,
  holder   TEXT NOT NULL,
  until_at INTEGER NOT NULL,
  failures TEXT NOT NULL,
  PRIMARY KEY (sub_id, cursor)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sub_deliveries_unsettled ON sub_deliveries(sub_id, cursor)
  WHERE status IN (1, 3);
CREATE INDEX IF NOT EXISTS sub_deliveries_dead ON sub_deliveries(sub_id, cursor)
  WHERE status = 4;
CREATE TABLE IF NOT EXISTS target_leases (
  name   TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  until_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

#define UB_SUB_SELECT                                                                    \
  "SELECT id, caller, name, filter, start_after, ack_deadline, max_attempts, target, " \
  "created_at, ack_floor, scanned FROM subscriptions "
#define UB_DELIVERY_SELECT \
  "SELECT cursor, status, attempts, holder, until_at, failures FROM sub_deliveries "

absl::StatusOr<SubscriptionRow> ReadSubscription(sqlite3_stmt* s) {
  SubscriptionRow row;
  row.id = sqlite3_column_int64(s, 0);
  row.spec.key.caller = std::string(ColumnBytes(s, 1));
  row.spec.key.name = std::string(ColumnBytes(s, 2));
  UB_RETURN_IF_ERROR(ParseStored(ColumnBytes(s, 3), row.spec.filter,
                                 absl::StrCat("the filter of subscription ", row.spec.key.name)));
  row.spec.start_after = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
  row.spec.ack_deadline = absl::Nanoseconds(sqlite3_column_int64(s, 5));
  row.spec.max_delivery_attempts = sqlite3_column_int(s, 6);
  row.spec.target = std::string(ColumnBytes(s, 7));
  row.created_at = absl::FromUnixNanos(sqlite3_column_int64(s, 8));
  row.ack_floor = static_cast<uint64_t>(sqlite3_column_int64(s, 9));
  row.scanned = static_cast<uint64_t>(sqlite3_column_int64(s, 10));
  return row;
}

absl::StatusOr<DeliveryRow> ReadDelivery(sqlite3_stmt* s) {
  DeliveryRow row;
  row.cursor = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
  row.status = static_cast<DeliveryStatus>(sqlite3_column_int(s, 1));
  row.attempts = sqlite3_column_int(s, 2);
  row.holder = std::string(ColumnBytes(s, 3));
  row.until = absl::FromUnixNanos(sqlite3_column_int64(s, 4));
  UB_ASSIGN_OR_RETURN(row.failures, DecodeFailures(ColumnBytes(s, 5),
                                                   absl::StrCat("delivery ", row.cursor)));
  return row;
}

// Steps `s` to the end, appending each row read by `read`.
template <typename Row, typename Read>
absl::Status ReadAll(sqlite3* db, sqlite3_stmt* s, Read read, std::vector<Row>& out,
                     const char* what) {
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    UB_ASSIGN_OR_RETURN(Row row, read(s));
    out.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return SqliteError(db, rc, what);
  return absl::OkStatus();
}

absl::Status Run(sqlite3* db, sqlite3_stmt* s, const char* what) {
  ScopedReset reset(s);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return SqliteError(db, rc, what);
  return absl::OkStatus();
}

}  // namespace

absl::Status CreateSqliteSubscriptionTables(sqlite3* db) {
  return Exec(db, kSubscriptionTables, "creating the subscription tables");
}

absl::StatusOr<sqlite3_stmt*> SqliteStmtCache::Get(const char* sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    UB_ASSIGN_OR_RETURN(StmtPtr stmt, Prepare(db_, sql));
    it = stmts_.emplace(sql, std::move(stmt)).first;
  }
  sqlite3_clear_bindings(it->second.get());
  return it->second.get();
}

absl::StatusOr<SubscriptionRow> SqliteLoadSubscription(SqliteStmtCache& c,
                                                       const SubscriptionKey& key) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s, c.Get(UB_SUB_SELECT "WHERE caller = ?1 AND name = ?2"));
  ScopedReset reset(s);
  BindText(s, 1, key.caller);
  BindText(s, 2, key.name);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(absl::StrCat("no subscription ", key.name));
  }
  if (rc != SQLITE_ROW) return SqliteError(c.db(), rc, "read subscription");
  return ReadSubscription(s);
}

absl::StatusOr<std::vector<SubscriptionRow>> SqliteListSubscriptions(SqliteStmtCache& c,
                                                                     const std::string& caller) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                      caller.empty()
                          ? c.Get(UB_SUB_SELECT "ORDER BY caller, name")
                          : c.Get(UB_SUB_SELECT "WHERE caller = ?1 ORDER BY caller, name"));
  ScopedReset reset(s);
  if (!caller.empty()) BindText(s, 1, caller);
  std::vector<SubscriptionRow> rows;
  UB_RETURN_IF_ERROR(ReadAll(c.db(), s, ReadSubscription, rows, "list subscriptions"));
  return rows;
}

absl::StatusOr<DeliveryCounts> SqliteCountDeliveries(SqliteStmtCache& c, int64_t id,
                                                     absl::Time now) {
  UB_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      c.Get("SELECT IFNULL(SUM(status = 2), 0), IFNULL(SUM(status = 1 AND until_at > ?2), 0), "
            "IFNULL(SUM(status = 4), 0) FROM sub_deliveries WHERE sub_id = ?1"));
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, absl::ToUnixNanos(now));
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return SqliteError(c.db(), rc, "count deliveries");
  return DeliveryCounts{sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                        sqlite3_column_int64(s, 2)};
}

absl::StatusOr<std::vector<DeliveryRow>> SqliteDeadDeliveries(SqliteStmtCache& c, int64_t id,
                                                              uint64_t after, int limit) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                      c.Get(UB_DELIVERY_SELECT "WHERE sub_id = ?1 AND status = 4 AND cursor > ?2 "
                                               "ORDER BY cursor LIMIT ?3"));
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(after));
  sqlite3_bind_int(s, 3, limit);
  std::vector<DeliveryRow> rows;
  UB_RETURN_IF_ERROR(ReadAll(c.db(), s, ReadDelivery, rows, "list dead letters"));
  return rows;
}

// --- SqliteWriter's subscription primitives.

absl::Status SqliteWriter::LockSubscriptions(const std::vector<SubscriptionKey>&,
                                             const std::vector<std::string>&) {
  return absl::OkStatus();  // the transaction holds the file's write lock
}

absl::StatusOr<SubscriptionRow> SqliteWriter::LoadSubscription(const SubscriptionKey& key) {
  return SqliteLoadSubscription(*subs_, key);
}

absl::StatusOr<int64_t> SqliteWriter::CountSubscriptions(const std::string& caller) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                      subs_->Get("SELECT COUNT(*) FROM subscriptions WHERE caller = ?1"));
  ScopedReset reset(s);
  BindText(s, 1, caller);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "count subscriptions");
  return sqlite3_column_int64(s, 0);
}

absl::StatusOr<int64_t> SqliteWriter::InsertSubscription(const SubscriptionSpec& spec,
                                                         absl::Time created_at) {
  UB_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      subs_->Get("INSERT INTO subscriptions(caller, name, filter, start_after, ack_deadline, "
                 "max_attempts, target, created_at, ack_floor, scanned) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?4, ?4)"));
  const std::string filter = spec.filter.SerializeAsString();
  BindText(s, 1, spec.key.caller);
  BindText(s, 2, spec.key.name);
  BindBlob(s, 3, filter);
  sqlite3_bind_int64(s, 4, static_cast<int64_t>(spec.start_after));
  sqlite3_bind_int64(s, 5, absl::ToInt64Nanoseconds(spec.ack_deadline));
  sqlite3_bind_int(s, 6, spec.max_delivery_attempts);
  BindText(s, 7, spec.target);
  sqlite3_bind_int64(s, 8, absl::ToUnixNanos(created_at));
  UB_RETURN_IF_ERROR(Run(db_.get(), s, "insert subscription"));
  return sqlite3_last_insert_rowid(db_.get());
}

absl::Status SqliteWriter::UpdateProgress(int64_t id, uint64_t ack_floor, uint64_t scanned) {
  UB_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      subs_->Get("UPDATE subscriptions SET ack_floor = ?2, scanned = ?3 WHERE id = ?1"));
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(ack_floor));
  sqlite3_bind_int64(s, 3, static_cast<int64_t>(scanned));
  return Run(db_.get(), s, "update subscription progress");
}

absl::Status SqliteWriter::DeleteSubscription(int64_t id) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * rows,
                      subs_->Get("DELETE FROM sub_deliveries WHERE sub_id = ?1"));
  sqlite3_bind_int64(rows, 1, id);
  UB_RETURN_IF_ERROR(Run(db_.get(), rows, "delete deliveries"));
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * sub, subs_->Get("DELETE FROM subscriptions WHERE id = ?1"));
  sqlite3_bind_int64(sub, 1, id);
  return Run(db_.get(), sub, "delete subscription");
}

absl::StatusOr<DeliveryCounts> SqliteWriter::CountDeliveries(int64_t id, absl::Time now) {
  return SqliteCountDeliveries(*subs_, id, now);
}

absl::StatusOr<std::vector<DeliveryRow>> SqliteWriter::LoadDeliveries(
    int64_t id, const std::vector<uint64_t>& cursors) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                      subs_->Get(UB_DELIVERY_SELECT "WHERE sub_id = ?1 AND cursor = ?2"));
  std::vector<uint64_t> sorted = cursors;
  std::sort(sorted.begin(), sorted.end());
  std::vector<DeliveryRow> rows;
  for (uint64_t cursor : sorted) {
    if (!rows.empty() && rows.back().cursor == cursor) continue;
    ScopedReset reset(s);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, static_cast<int64_t>(cursor));
    UB_RETURN_IF_ERROR(ReadAll(db_.get(), s, ReadDelivery, rows, "read deliveries"));
  }
  return rows;
}

absl::StatusOr<std::vector<DeliveryRow>> SqliteWriter::DueDeliveries(int64_t id, absl::Time now,
                                                                     uint64_t after, int limit) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                      subs_->Get(UB_DELIVERY_SELECT
                                 "WHERE sub_id = ?1 AND status IN (1, 3) AND cursor > ?3 "
                                 "AND until_at <= ?2 ORDER BY cursor LIMIT ?4"));
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, absl::ToUnixNanos(now));
  sqlite3_bind_int64(s, 3, static_cast<int64_t>(after));
  sqlite3_bind_int(s, 4, limit);
  std::vector<DeliveryRow> rows;
  UB_RETURN_IF_ERROR(ReadAll(db_.get(), s, ReadDelivery, rows, "read due deliveries"));
  return rows;
}

absl::StatusOr<std::vector<DeliveryRow>> SqliteWriter::DeadDeliveries(int64_t id, uint64_t after,
                                                                      int limit) {
  return SqliteDeadDeliveries(*subs_, id, after, limit);
}

absl::Status SqliteWriter::PutDeliveries(int64_t id, const std::vector<DeliveryRow>& rows) {
  UB_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      subs_->Get("INSERT OR REPLACE INTO sub_deliveries(sub_id, cursor, status, attempts, "
                 "holder, until_at, failures) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  for (const DeliveryRow& row : rows) {
    const std::string failures = EncodeFailures(row.failures);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, static_cast<int64_t>(row.cursor));
    sqlite3_bind_int(s, 3, static_cast<int>(row.status));
    sqlite3_bind_int(s, 4, row.attempts);
    BindText(s, 5, row.holder);
    sqlite3_bind_int64(s, 6, absl::ToUnixNanos(row.until));
    BindText(s, 7, failures);
    UB_RETURN_IF_ERROR(Run(db_.get(), s, "write delivery"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<uint64_t>> SqliteWriter::FirstUnsettled(int64_t id,
                                                                     uint64_t above) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                      subs_->Get("SELECT MIN(cursor) FROM sub_deliveries "
                                 "WHERE sub_id = ?1 AND status IN (1, 3) AND cursor > ?2"));
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(above));
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "find the first unsettled delivery");
  if (sqlite3_column_type(s, 0) == SQLITE_NULL) return std::optional<uint64_t>();
  return std::optional<uint64_t>(static_cast<uint64_t>(sqlite3_column_int64(s, 0)));
}

absl::Status SqliteWriter::DeleteAckedThrough(int64_t id, uint64_t floor) {
  UB_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      subs_->Get("DELETE FROM sub_deliveries WHERE sub_id = ?1 AND cursor <= ?2 AND status = 2"));
  sqlite3_bind_int64(s, 1, id);
  sqlite3_bind_int64(s, 2, static_cast<int64_t>(floor));
  return Run(db_.get(), s, "delete settled deliveries");
}

absl::StatusOr<bool> SqliteWriter::ClaimTarget(const std::string& name, const std::string& holder,
                                               absl::Time now, absl::Time until) {
  UB_ASSIGN_OR_RETURN(
      sqlite3_stmt * s,
      subs_->Get("INSERT INTO target_leases(name, holder, until_at) VALUES (?1, ?2, ?4) "
                 "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                 "until_at = excluded.until_at "
                 "WHERE target_leases.holder = excluded.holder OR target_leases.until_at <= ?3 "
                 "RETURNING holder"));
  ScopedReset reset(s);
  BindText(s, 1, name);
  BindText(s, 2, holder);
  sqlite3_bind_int64(s, 3, absl::ToUnixNanos(now));
  sqlite3_bind_int64(s, 4, absl::ToUnixNanos(until));
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "claim target");
  const bool held = ColumnBytes(s, 0) == holder;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "claim target");
  return held;
}

absl::Status SqliteWriter::ReleaseTarget(const std::string& name, const std::string& holder) {
  UB_ASSIGN_OR_RETURN(sqlite3_stmt * s,
                      subs_->Get("DELETE FROM target_leases WHERE name = ?1 AND holder = ?2"));
  BindText(s, 1, name);
  BindText(s, 2, holder);
  return Run(db_.get(), s, "release target");
}

}  // namespace uploadbroker::ledger
