// PgWriter: PostgresLedger's write connection, internal to ledger/. Used
// only by the ledger's committer thread (see EngineWriter).
//
// Cursors across brokers: events are numbered from one counter row
// (ub_event_counter), locked with SELECT ... FOR UPDATE by PrepareToAppend
// and held until the batch commits. Brokers therefore number and commit
// their events one transaction at a time, so the order of cursors is the
// order in which events become visible: a reader that has seen cursor N
// never later finds a committed event below N. Batches that only create
// intents never take the lock.
//
// Round trips: a batch costs a handful whatever its size. Its creations
// are one multi-row INSERT; the intents it settles are locked and fetched
// with one SELECT ... FOR UPDATE (LockIntents); settlements are kept and
// written at Commit with one statement (each later lookup in the batch sees
// them), then the counter, NOTIFY and COMMIT go in one more.
//
// Savepoints: an operation writes nothing until Commit, and refusals
// (lookups, the check, state rules) happen before it records anything, so
// a refused operation leaves nothing to undo and no SQL savepoint is
// needed. If a statement fails, PostgreSQL has aborted the transaction and
// the batch fails as a whole (RollbackSavepoint says so).
//
// Connection loss: the writer reconnects at the next Begin, at most once
// per backoff interval (100 ms doubling to 5 s), failing fast with
// Unavailable in between. A COMMIT whose answer is lost is resolved before
// Commit returns: the writer reconnects and asks pg_xact_status for the
// transaction's id, so an acknowledged batch is never reported as failed
// twice, and a failed one never as written.
#ifndef UPLOADBROKER_LEDGER_PG_WRITER_H_
#define UPLOADBROKER_LEDGER_PG_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "ledger/engine.h"
#include "ledger/pg_conn.h"

namespace uploadbroker::ledger {

class PgWriter final : public EngineWriter {
 public:
  // Connects, creates or migrates the schema (see pg_schema.h).
  static absl::StatusOr<std::unique_ptr<PgWriter>> Open(std::string dsn);

  absl::Status Begin() override;
  absl::Status Commit() override;
  void Rollback() override;
  absl::Status PrepareToAppend() override;
  absl::Status LockIntents(const std::vector<std::string>& upload_ids) override;
  absl::Status Savepoint() override { return absl::OkStatus(); }
  absl::Status ReleaseSavepoint() override;
  absl::Status RollbackSavepoint(const absl::Status& cause) override;

  // One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING upload_id:
  // one round trip for the whole run, and a taken id does not abort the
  // batch.
  absl::StatusOr<std::vector<absl::Status>> InsertIntents(
      const std::vector<const Upload*>& intents) override;
  // SELECT ... FOR UPDATE.
  absl::StatusOr<Upload> LockIntent(const std::string& upload_id) override;
  absl::StatusOr<Event> LoadCompletedEvent(const std::string& upload_id) override;
  // Recorded, written at Commit; requires PrepareToAppend first.
  absl::Status Settle(const Upload& upload, absl::Time now, Event& event) override;
  absl::StatusOr<int64_t> Prune(const Retention& retention, absl::Time now,
                                int max_rows) override;
  uint64_t last_cursor() const override { return tx_last_cursor_; }

 private:
  explicit PgWriter(std::string dsn) : dsn_(std::move(dsn)) {}
  absl::Status EnsureConnected();
  // Drops a broken connection so the next Begin reconnects.
  absl::Status Forget(absl::Status status);
  absl::Status ResolveLostCommit(const absl::Status& cause);
  // Writes the recorded settlements (one statement).
  absl::Status WriteSettlements();

  const std::string dsn_;  // secret: never logged or put in a status
  std::unique_ptr<PgConn> conn_;
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Duration backoff_ = absl::ZeroDuration();

  // A settlement recorded by Settle, written by Commit.
  struct Settled {
    Upload upload;
    int64_t settled_at;  // Unix nanoseconds
    Event event;
  };
  std::string xid_;              // of the open transaction
  absl::flat_hash_map<std::string, Upload> fetched_;  // by LockIntents
  std::vector<Settled> settled_;
  absl::flat_hash_map<std::string, size_t> settled_index_;  // into settled_
  bool locked_ = false;          // holds the cursor counter
  uint64_t counter_at_lock_ = 0;
  uint64_t tx_last_cursor_ = 0;  // as of the last released operation
  uint64_t op_last_cursor_ = 0;  // inside the current operation
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_PG_WRITER_H_
