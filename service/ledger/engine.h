// The seam between GroupCommitLedger and a storage engine (SQLite,
// PostgreSQL). Internal to ledger/: the rest of the product sees only
// ledger::Ledger.
//
// An engine has one write side (EngineWriter), used only by the ledger's
// committer thread, and one read side (EngineReader), thread-safe, used by
// any thread. Errors are absl::Status with a message that names what failed
// and never contains a secret (a connection string or password).
#ifndef UPLOADBROKER_LEDGER_ENGINE_H_
#define UPLOADBROKER_LEDGER_ENGINE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ledger/ledger.h"

namespace uploadbroker::ledger {

// Time as stored in integer columns: Unix nanoseconds (saturating).
int64_t ToUnixNanos(const google::protobuf::Timestamp& ts);
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts);

// What retention may delete. Zero means "no limit" for each field.
struct Retention {
  // Events: keep at most this many, and/or only those younger than this.
  int64_t max_events = 0;
  absl::Duration max_age = absl::ZeroDuration();
  // Intents settled (COMPLETED or EXPIRED) longer ago than this are deleted.
  absl::Duration settled_max_age = absl::ZeroDuration();
  bool enabled() const {
    return max_events > 0 || max_age > absl::ZeroDuration() ||
           settled_max_age > absl::ZeroDuration();
  }
};

// A subscription as stored (subscriptions.h: the progress model). `id` is
// the engine's own key for it; a deleted and re-created subscription gets
// a new one, so rows of the old one never mix with the new one's.
struct SubscriptionRow {
  int64_t id = 0;
  SubscriptionSpec spec;
  absl::Time created_at;
  uint64_t ack_floor = 0;
  uint64_t scanned = 0;
};

// A delivery row: one matching event of one subscription, at most once.
enum class DeliveryStatus : int {
  kLeased = 1,   // held by `holder` until `until`
  kAcked = 2,    // settled; deleted once at or below the floor
  kWaiting = 3,  // refused or failed; available again at `until`
  kDead = 4,     // set aside at `until`; kept until redriven or deleted
};
struct DeliveryRow {
  uint64_t cursor = 0;
  DeliveryStatus status = DeliveryStatus::kLeased;
  int attempts = 0;  // deliveries so far (leases handed out)
  std::string holder;
  absl::Time until;
  std::vector<FailedAttempt> failures;  // oldest first, bounded
};
struct DeliveryCounts {
  int64_t acked = 0;   // acknowledged rows (all are above the floor)
  int64_t leased = 0;  // under a lease that has not run out at `now`
  int64_t dead = 0;
};

// Failed attempts as stored in one column (a JSON array of [unix_nanos,
// reason]); Decode answers DataLoss naming `what` for bytes it cannot read.
std::string EncodeFailures(const std::vector<FailedAttempt>& failures);
absl::StatusOr<std::vector<FailedAttempt>> DecodeFailures(absl::string_view bytes,
                                                          absl::string_view what);

// The write connection. A batch is one transaction (Begin ... Commit); each
// operation runs in its own savepoint so that a failing operation leaves
// the rest of the batch intact. Cursors are assigned in commit order and
// advance only when an operation's savepoint is released, so committed
// cursors have no gaps and are never reused.
class EngineWriter {
 public:
  virtual ~EngineWriter() = default;

  // Batch transaction control. Commit returns OK only once the batch is
  // durable; otherwise an error whose message says whether the batch was
  // written. When the outcome cannot be learnt, nothing in the batch is
  // acknowledged, though it may have been written: a later read, a
  // repeated callback or the reconciler sees whichever happened.
  // Rollback is best effort and safe without an open transaction.
  virtual absl::Status Begin() = 0;
  virtual absl::Status Commit() = 0;
  virtual void Rollback() = 0;

  // Called before the savepoint of an operation that may append events:
  // an engine shared by several processes serializes cursor numbering here,
  // for the rest of the transaction.
  virtual absl::Status PrepareToAppend() = 0;
  // Called right after PrepareToAppend with the uploads the batch's
  // operations will settle: an engine may lock and fetch them all at once,
  // so that LockIntent needs no lookup of its own. It may do nothing.
  virtual absl::Status LockIntents(const std::vector<std::string>& upload_ids) = 0;
  virtual absl::Status Savepoint() = 0;
  virtual absl::Status ReleaseSavepoint() = 0;
  // Undoes the operation's writes; an error dooms the batch.
  virtual absl::Status RollbackSavepoint(const absl::Status& cause) = 0;

  // Primitives of the operations (transitions.h holds their rules); call
  // only between Savepoint and Release/Rollback.
  // Stores new PENDING intents (ids distinct, already checked by the
  // caller): one status each, AlreadyExists where the id is taken, the
  // others stored. The returned error, if any, dooms the batch. Called
  // instead of Savepoint/Release for runs of consecutive creations, so an
  // engine may store them in one statement.
  virtual absl::StatusOr<std::vector<absl::Status>> InsertIntents(
      const std::vector<const Upload*>& intents) = 0;
  // The stored intent, locked against other writers until the transaction
  // ends; NotFound if there is none.
  virtual absl::StatusOr<Upload> LockIntent(const std::string& upload_id) = 0;
  // The upload's stored UploadCompleted event; NotFound if there is none
  // (retention deleted it).
  virtual absl::StatusOr<Event> LoadCompletedEvent(const std::string& upload_id) = 0;
  // Stores `upload`, settled (COMPLETED or EXPIRED) at `now`, and appends
  // `event` with the next cursor, which it sets on `event`.
  virtual absl::Status Settle(const Upload& upload, absl::Time now, Event& event) = 0;
  // Deletes at most `max_rows` events and at most `max_rows` intents that
  // `retention` no longer keeps (oldest first). Returns how many rows were
  // deleted in all.
  virtual absl::StatusOr<int64_t> Prune(const Retention& retention,
                                        absl::Time now, int max_rows) = 0;

  // Highest cursor assigned by released savepoints of the open transaction
  // (or of the last committed one).
  virtual uint64_t last_cursor() const = 0;

  // --- Subscriptions (subscription_ops.h holds their rules). ---
  // Called once at the start of a batch, before any other operation, with
  // every subscription and target the batch's operations will touch
  // (sorted, distinct): an engine shared by several processes locks their
  // rows here, always in this order, so that two batches never wait for
  // each other in a cycle. Rows that do not exist are skipped.
  virtual absl::Status LockSubscriptions(const std::vector<SubscriptionKey>& keys,
                                         const std::vector<std::string>& targets) = 0;
  // The stored subscription; NotFound if there is none.
  virtual absl::StatusOr<SubscriptionRow> LoadSubscription(const SubscriptionKey& key) = 0;
  virtual absl::StatusOr<int64_t> CountSubscriptions(const std::string& caller) = 0;
  // Stores a new one (floor = scanned = start_after); returns its id. The
  // caller has checked that the key is free.
  virtual absl::StatusOr<int64_t> InsertSubscription(const SubscriptionSpec& spec,
                                                     absl::Time created_at) = 0;
  virtual absl::Status UpdateProgress(int64_t id, uint64_t ack_floor, uint64_t scanned) = 0;
  // Deletes it and all its delivery rows.
  virtual absl::Status DeleteSubscription(int64_t id) = 0;
  virtual absl::StatusOr<DeliveryCounts> CountDeliveries(int64_t id, absl::Time now) = 0;
  // The rows of these cursors that exist, in cursor order.
  virtual absl::StatusOr<std::vector<DeliveryRow>> LoadDeliveries(
      int64_t id, const std::vector<uint64_t>& cursors) = 0;
  // Rows available at `now` (leased until <= now, or waiting until <= now)
  // with cursor > after, in cursor order, at most `limit`.
  virtual absl::StatusOr<std::vector<DeliveryRow>> DueDeliveries(int64_t id, absl::Time now,
                                                                 uint64_t after,
                                                                 int limit) = 0;
  // Dead rows with cursor > after, in cursor order, at most `limit`.
  virtual absl::StatusOr<std::vector<DeliveryRow>> DeadDeliveries(int64_t id, uint64_t after,
                                                                  int limit) = 0;
  // Inserts or replaces these rows.
  virtual absl::Status PutDeliveries(int64_t id, const std::vector<DeliveryRow>& rows) = 0;
  // Lowest cursor > above of a leased or waiting row, if any.
  virtual absl::StatusOr<std::optional<uint64_t>> FirstUnsettled(int64_t id,
                                                                 uint64_t above) = 0;
  // Deletes acknowledged rows with cursor <= floor.
  virtual absl::Status DeleteAckedThrough(int64_t id, uint64_t floor) = 0;
  // Target leases (Ledger::ClaimTarget): one row per target.
  virtual absl::StatusOr<bool> ClaimTarget(const std::string& name, const std::string& holder,
                                           absl::Time now, absl::Time until) = 0;
  virtual absl::Status ReleaseTarget(const std::string& name, const std::string& holder) = 0;
};

// The read side. Thread-safe; each call sees one committed snapshot.
class EngineReader {
 public:
  virtual ~EngineReader() = default;
  virtual absl::StatusOr<Upload> GetUpload(const std::string& upload_id) = 0;
  // `query.limit` must be 1..1000.
  virtual absl::StatusOr<UploadPage> ListUploads(const UploadQuery& query) = 0;
  // See Ledger::ClaimExpiredPending; `now` is the ledger clock's.
  virtual absl::StatusOr<std::vector<Upload>> ClaimExpiredPending(
      absl::Time cutoff, int limit, absl::Time now, absl::Duration lease) = 0;
  virtual absl::StatusOr<EventRecords> ReadEventRecords(uint64_t after,
                                                        int limit,
                                                        size_t max_bytes) = 0;
  virtual absl::StatusOr<uint64_t> LastCursor() = 0;
  virtual absl::StatusOr<uint64_t> FirstCursor() = 0;
  virtual absl::StatusOr<std::map<v1::UploadState, int64_t>> CountByState() = 0;
  // Subscriptions (Ledger's methods of the same names); `now` decides
  // which leases count as running.
  virtual absl::StatusOr<SubscriptionState> GetSubscription(const SubscriptionKey& key,
                                                            absl::Time now) = 0;
  virtual absl::StatusOr<std::vector<SubscriptionState>> ListSubscriptions(
      const std::string& caller, absl::Time now) = 0;
  virtual absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(const SubscriptionKey& key,
                                                                  uint64_t after,
                                                                  int limit) = 0;
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_ENGINE_H_
