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
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_ENGINE_H_
