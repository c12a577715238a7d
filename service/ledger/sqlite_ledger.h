// SqliteLedger: the embedded Ledger engine, one SQLite file in WAL mode.
//
// Durability: a write's `done` callback runs only after the transaction
// holding it has been committed with synchronous=FULL (fsynced). A crash
// loses only writes whose callback has not run yet.
//
// Threads: one committer thread owns the write connection. Writes are
// queued; the committer takes everything waiting (up to max_batch) and
// commits it as one transaction (group commit), each operation in its own
// savepoint so that one failing operation does not affect the others. After
// the commit it runs the batch's `done` callbacks, then the listeners, on
// that thread with no lock held. `done` callbacks and listeners may start
// new asynchronous writes but must never wait for one (that would deadlock).
// Reads use a pool of separate read-only connections and never wait for the
// committer. All methods are thread-safe.
//
// Cursors: strictly increasing and gap-free in commit order, never reused,
// even after retention has deleted every event. LastCursor() is the newest
// cursor ever assigned, so it stays put when retention empties the log;
// FirstCursor() is then 0.
//
// Retention: when configured, the committer deletes the oldest events in
// chunks (as part of ordinary batches, periodically and while idle). Intents
// are kept. A repeated CompleteUpload whose event was deleted returns an
// event rebuilt from the intent, with cursor 0.
#ifndef UPLOADBROKER_LEDGER_SQLITE_LEDGER_H_
#define UPLOADBROKER_LEDGER_SQLITE_LEDGER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ledger/ledger.h"
#include "ledger/sqlite_writer.h"

namespace uploadbroker::ledger {

class SqliteReaders;
class WriteOp;

class SqliteLedger final : public Ledger {
 public:
  struct Options {
    // Database file; created (with its schema) if missing. Its directory
    // must exist and be writable (WAL needs side files next to it).
    std::string path;
    // Source of committed_at / completed_at. Not owned; required; must
    // outlive the ledger.
    common::Clock* clock = nullptr;
    // Most operations committed in one transaction.
    int max_batch = 256;
    // Retention of events; 0 means unlimited for each.
    int64_t retain_max_events = 0;
    absl::Duration retain_max_age = absl::ZeroDuration();
    // How long a statement waits for a lock held by another process (or a
    // checkpoint) before failing with Unavailable.
    absl::Duration busy_timeout = absl::Seconds(5);
  };

  // Opens or creates the ledger and starts its committer. Errors name the
  // file and the reason: InvalidArgument for bad options, Unavailable when
  // the file cannot be opened or written, DataLoss when it is not a ledger
  // database, FailedPrecondition for an unknown schema version.
  static absl::StatusOr<std::unique_ptr<SqliteLedger>> Create(Options options);

  // Stops accepting writes (later ones fail with Unavailable, on the calling
  // thread), commits everything already queued, runs its callbacks, joins
  // the committer.
  ~SqliteLedger() override;

  SqliteLedger(const SqliteLedger&) = delete;
  SqliteLedger& operator=(const SqliteLedger&) = delete;

  void CreateIntent(Upload intent,
                    std::function<void(absl::Status)> done) override;
  using Ledger::CompleteUpload;  // the overload without a check
  void CompleteUpload(
      std::string upload_id, Completion completion, CompletionCheck check,
      std::function<void(absl::StatusOr<CompleteResult>)> done) override;
  void ExpireUpload(std::string upload_id,
                    std::function<void(absl::StatusOr<Event>)> done) override;

  absl::StatusOr<Upload> GetUpload(const std::string& upload_id) override;
  // `query.limit` must be 1..1000.
  absl::StatusOr<UploadPage> ListUploads(const UploadQuery& query) override;
  absl::StatusOr<std::vector<Upload>> ListExpiredPending(absl::Time cutoff,
                                                         int limit) override;
  absl::StatusOr<EventRecords> ReadEventRecords(uint64_t after, int limit,
                                                size_t max_bytes) override;
  absl::StatusOr<uint64_t> LastCursor() override;
  absl::StatusOr<std::map<v1::UploadState, int64_t>> CountUploadsByState() override;
  absl::StatusOr<uint64_t> FirstCursor() override;

  // After RemoveListener returns, `fn` is not running and will not be called
  // again (unless RemoveListener is called from a listener or callback).
  int AddListener(std::function<void(uint64_t)> fn) override;
  void RemoveListener(int id) override;

  // False after a failed commit, until a later commit succeeds, and once
  // shutdown has begun.
  bool Healthy() override;

  // Runs one retention pass (at most one chunk) now, on the committer, and
  // waits for it. Returns the number of events deleted. Retention also runs
  // on its own; this is for tools and tests. Must not be called from a
  // `done` callback or listener.
  absl::StatusOr<int64_t> PruneNow();

 private:
  SqliteLedger(Options options, std::unique_ptr<SqliteWriter> writer,
               std::unique_ptr<SqliteReaders> readers);

  void Enqueue(std::unique_ptr<WriteOp> op);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  }
  std::unique_ptr<WriteOp> MakePruneOp(
      std::function<void(absl::StatusOr<int64_t>)> done);
  void CommitLoop();
  void RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch);
  void Notify(uint64_t cursor);

  const Options options_;
  const Retention retention_;
  // Used only by the committer thread (and by Create before it starts).
  const std::unique_ptr<SqliteWriter> writer_;
  const std::unique_ptr<SqliteReaders> readers_;
  std::atomic<bool> healthy_{true};

  absl::Mutex mu_;
  std::deque<std::unique_ptr<WriteOp>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex listeners_mu_;
  std::map<int, std::shared_ptr<const std::function<void(uint64_t)>>>
      listeners_ ABSL_GUARDED_BY(listeners_mu_);
  int next_listener_id_ ABSL_GUARDED_BY(listeners_mu_) = 1;
  // False while a notification round runs (it holds copies of listeners).
  bool listeners_quiet_ ABSL_GUARDED_BY(listeners_mu_) = true;

  std::thread committer_;  // last: starts after everything above exists
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SQLITE_LEDGER_H_
