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
// Unavailable in between.
//
// A lost COMMIT (the connection broke before COMMIT's answer arrived: the
// backend was killed, the server restarted, the network failed) is resolved
// by what is in the database, never by a transaction id (PostgreSQL hands
// out again the id of a transaction none of whose WAL reached disk). Each
// batch that wrote something inserts a marker row, ub_batches(batch_id), a
// random 128-bit id only it knows, in the statement that carries its COMMIT
// (no extra round trip). After a lost COMMIT, Commit reconnects and inserts
// the same id as a *fence* (autocommit, ON CONFLICT DO NOTHING): the unique
// index makes that insert wait until the old transaction, if it still runs,
// has ended; then (reading the row in a new statement if the fence did not
// go in)
//   - the batch's own marker is there: the batch committed; Commit returns OK;
//   - the fence went in (or an earlier fence of ours is there): the batch
//     did not commit, and now never can (its marker insert would collide
//     with the committed fence, e.g. on a backend that only receives the
//     COMMIT message later); Commit returns Unavailable.
// Until one of these is known (the server is down, the old transaction
// still holds its locks) Commit keeps trying for up to kResolveFor (10 s),
// then returns Unavailable saying the outcome is unknown. So an
// acknowledged batch is always written; a batch reported as failed was
// not, except in that last case, where it is reported as failed while it
// may have been written (its retry finds it and appends nothing twice).
// A batch that wrote nothing (only refusals and repeats) has no marker:
// what it answered was read from committed rows, and a lost COMMIT changes
// nothing about it.
//
// Markers stay small: each batch deletes the marker of this writer's
// previous committed batch (same statement), and every kSweepEvery-th such
// batch deletes markers and fences older than kMarkerMaxAge (1 hour; beyond
// any resolution), which covers brokers that died.
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

  // Subscriptions (pg_subscriptions.cc): written at once, not at Commit;
  // every check is made before the first write, so a refused operation
  // still leaves nothing to undo. LockSubscriptions: one sorted
  // SELECT ... FOR UPDATE for the subscriptions, one for the targets.
  absl::Status LockSubscriptions(const std::vector<SubscriptionKey>& keys,
                                 const std::vector<std::string>& targets) override;
  absl::StatusOr<SubscriptionRow> LoadSubscription(const SubscriptionKey& key) override;
  absl::StatusOr<int64_t> CountSubscriptions(const std::string& caller) override;
  // Aborted (nothing written) if another broker created the key meanwhile.
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
  // One statement on the batch's connection; `writes`: it changes rows, so
  // the batch needs its commit marker.
  absl::StatusOr<PgResult> Run(const char* sql, const std::vector<PgParam>& params,
                               absl::string_view what, bool writes);
  explicit PgWriter(std::string dsn) : dsn_(std::move(dsn)) {}
  absl::Status EnsureConnected();
  // Drops a broken connection so the next Begin reconnects.
  absl::Status Forget(absl::Status status);
  // Learns from ub_batches whether the batch whose COMMIT answer was lost
  // committed (OK) or not (Unavailable), or gives up (Unavailable).
  absl::Status ResolveLostCommit(const absl::Status& cause);
  // One attempt on a new connection (kept as conn_ on success): whether the
  // batch committed, once its transaction has certainly ended.
  absl::StatusOr<bool> LookForBatch();
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
  std::string batch_id_;         // the open batch's marker (32 hex digits)
  std::string last_marker_;      // of this writer's last committed batch
  bool wrote_ = false;           // the open batch inserted or settled something
  uint64_t batches_ = 0;         // with a marker, for the sweep
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
