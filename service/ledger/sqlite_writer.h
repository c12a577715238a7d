// SqliteWriter: the ledger's single write connection, internal to
// SqliteLedger.
//
// Owned and used only by SqliteLedger's committer thread. A batch is one
// transaction (Begin ... Commit); each operation runs inside its own
// savepoint so that a failing operation leaves the rest of the batch intact.
// Cursors are assigned here: the next cursor is one past the highest ever
// assigned (the AUTOINCREMENT sequence), advanced only when an operation's
// savepoint is released, so committed cursors have no gaps and are never
// reused, even after pruning.
#ifndef UPLOADBROKER_LEDGER_SQLITE_WRITER_H_
#define UPLOADBROKER_LEDGER_SQLITE_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/engine.h"
#include "ledger/ledger.h"
#include "ledger/sqlite_subscriptions.h"
#include "ledger/sqlite_util.h"

namespace uploadbroker::ledger {

class SqliteWriter final : public EngineWriter {
 public:
  // The schema version this build reads and writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 3;

  // Opens or creates the database at `path`: WAL mode, synchronous=FULL,
  // schema created on first use, a version 1 or 2 ledger migrated in place
  // (one transaction). FailedPrecondition for an unknown schema
  // version; DataLoss for a file that is not a ledger database; Unavailable
  // when the file or its directory cannot be written.
  static absl::StatusOr<std::unique_ptr<SqliteWriter>> Open(
      const std::string& path, absl::Duration busy_timeout);

  // Batch transaction control. Commit syncs to disk before returning.
  // Rollback is best effort and safe to call when no transaction is open.
  absl::Status Begin() override;
  absl::Status Commit() override;
  void Rollback() override;
  // One process writes at a time (the write lock), so nothing to do.
  absl::Status PrepareToAppend() override { return absl::OkStatus(); }
  // Lookups are local: nothing to gain.
  absl::Status LockIntents(const std::vector<std::string>&) override {
    return absl::OkStatus();
  }

  // Per-operation savepoint. RollbackSavepoint undoes the operation's
  // writes; it fails (dooming the batch) if SQLite already aborted the
  // whole transaction, with `cause` in the message.
  absl::Status Savepoint() override;
  absl::Status ReleaseSavepoint() override;
  absl::Status RollbackSavepoint(const absl::Status& cause) override;

  // One INSERT each: a refused one undoes only itself.
  absl::StatusOr<std::vector<absl::Status>> InsertIntents(
      const std::vector<const Upload*>& intents) override;
  // One process writes the file, and the transaction holds its write lock.
  absl::StatusOr<Upload> LockIntent(const std::string& upload_id) override;
  absl::StatusOr<Event> LoadCompletedEvent(const std::string& upload_id) override;
  absl::Status Settle(const Upload& upload, absl::Time now, Event& event) override;
  absl::StatusOr<int64_t> Prune(const Retention& retention, absl::Time now,
                                int max_rows) override;

  // Highest cursor assigned by released savepoints of the open transaction
  // (or of the last committed one).
  uint64_t last_cursor() const override { return tx_last_cursor_; }

  // Subscriptions (sqlite_subscriptions.h). One process writes the file:
  // LockSubscriptions has nothing to do.
  absl::Status LockSubscriptions(const std::vector<SubscriptionKey>& keys,
                                 const std::vector<std::string>& targets) override;
  absl::StatusOr<SubscriptionRow> LoadSubscription(const SubscriptionKey& key) override;
  absl::StatusOr<int64_t> CountSubscriptions(const std::string& caller) override;
  absl::StatusOr<int64_t> InsertSubscription(const SubscriptionSpec& spec,
                                             absl::Time created_at) override;
  absl::Status UpdateProgress(int64_t id, uint64_t ack_floor, uint64_t scanned) override;
  absl::Status DeleteSubscription(int64_t id) override;
  absl::StatusOr<DeliveryCounts> CountDeliveries(int64_t id, absl::Time now) override;
  absl::StatusOr<std::vector<DeliveryRow>> LoadDeliveries(
      int64_t id, const std::vector<uint64_t>& cursors) override;
  absl::StatusOr<std::vector<DeliveryRow>> DueDeliveries(int64_t id, absl::Time now,
                                                         uint64_t after, int limit) override;
  absl::StatusOr<std::vector<DeliveryRow>> DeadDeliveries(int64_t id, uint64_t after,
                                                          int limit) override;
  absl::Status PutDeliveries(int64_t id, const std::vector<DeliveryRow>& rows) override;
  absl::StatusOr<std::optional<uint64_t>> FirstUnsettled(int64_t id, uint64_t above) override;
  absl::Status DeleteAckedThrough(int64_t id, uint64_t floor) override;
  absl::StatusOr<bool> ClaimTarget(const std::string& name, const std::string& holder,
                                   absl::Time now, absl::Time until) override;
  absl::Status ReleaseTarget(const std::string& name, const std::string& holder) override;

 private:
  explicit SqliteWriter(DbPtr db) : db_(std::move(db)) {}
  absl::Status Init();
  absl::Status InitSchema();
  absl::Status PrepareStatements();

  absl::StatusOr<int64_t> PruneEvents(const Retention& retention, absl::Time now,
                                      int max_rows);
  absl::Status StepDone(sqlite3_stmt* stmt, const char* what);
  absl::Status InsertIntent(const Upload& intent);

  DbPtr db_;
  StmtPtr begin_, commit_, rollback_;
  StmtPtr savepoint_, release_, rollback_to_;
  StmtPtr last_seq_, insert_intent_, select_intent_, update_intent_;
  StmtPtr insert_event_, select_event_;
  StmtPtr first_cursor_, scan_old_, delete_events_, delete_settled_;

  std::unique_ptr<SqliteStmtCache> subs_;  // subscription statements

  uint64_t tx_last_cursor_ = 0;  // as of the last released savepoint
  uint64_t op_last_cursor_ = 0;  // inside the current savepoint
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SQLITE_WRITER_H_
