// GroupCommitLedger: the Ledger on top of a storage engine (engine.h), with
// one committer thread and group commit. SqliteLedger and PostgresLedger
// are this class with their engine plugged in.
//
// Durability: a write's `done` callback runs only after the transaction
// holding it has been committed durably (the engine's Commit returned OK).
// A crash loses only writes whose callback has not run yet.
//
// Threads: one committer thread owns the engine's writer. Writes are
// queued; the committer takes everything waiting (up to max_batch) and
// commits it as one transaction: each operation in its own savepoint, and
// runs of creations stored together (EngineWriter::InsertIntents), so that
// one refused operation does not affect the others. After the commit
// it runs the batch's `done` callbacks, then the listeners, on that thread
// with no lock held. `done` callbacks and listeners may start new
// asynchronous writes but must never wait for one (that would deadlock).
// Reads go straight to the engine's reader and never wait for the
// committer. All methods are thread-safe.
//
// Health: false after a failed commit; while so, the idle committer tries
// an empty transaction every second, and the first that commits makes it
// true again (so the ledger recovers without new writes).
//
// Listeners: called with the newest cursor after every local commit that
// appended events, and by NotifyCommitted() for commits an engine learns of
// otherwise (another process). Cursors passed to listeners never go
// backwards; calls from two threads may overlap.
//
// Retention (when configured): the committer deletes the oldest events and
// settled intents in chunks, as part of ordinary batches, periodically and
// while idle. A repeated CompleteUpload whose event was deleted returns an
// event rebuilt from the intent, with cursor 0. GetUpload of an intent that
// retention may have deleted answers NotFound saying so.
#ifndef UPLOADBROKER_LEDGER_GROUP_COMMIT_LEDGER_H_
#define UPLOADBROKER_LEDGER_GROUP_COMMIT_LEDGER_H_

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
#include "common/clock.h"
#include "ledger/engine.h"
#include "ledger/ledger.h"

namespace uploadbroker::ledger {

class WriteOp;

class GroupCommitLedger : public Ledger {
 public:
  struct Options {
    // Source of committed_at / completed_at. Not owned; required; must
    // outlive the ledger.
    common::Clock* clock = nullptr;
    // Most operations committed in one transaction.
    int max_batch = 256;
    Retention retention;
  };

  // InvalidArgument naming the field for bad options.
  static absl::Status Validate(const Options& options);

  // Stops accepting writes (later ones fail with Unavailable, on the calling
  // thread), commits everything already queued, runs its callbacks, joins
  // the committer. Subclasses must stop their own threads that call
  // NotifyCommitted before this runs.
  ~GroupCommitLedger() override;

  void CreateIntent(Upload intent,
                    std::function<void(absl::Status)> done) override;
  using Ledger::CompleteUpload;  // the overload without a check
  void CompleteUpload(
      std::string upload_id, Completion completion, CompletionCheck check,
      std::function<void(absl::StatusOr<CompleteResult>)> done) override;
  void ExpireUpload(std::string upload_id, v1::ExpiryReason reason,
                    std::function<void(absl::StatusOr<Event>)> done) override;

  absl::StatusOr<Upload> GetUpload(const std::string& upload_id) override;
  absl::StatusOr<UploadPage> ListUploads(const UploadQuery& query) override;
  absl::StatusOr<std::vector<Upload>> ClaimExpiredPending(
      absl::Time cutoff, int limit, absl::Duration lease) override;
  absl::StatusOr<EventRecords> ReadEventRecords(uint64_t after, int limit,
                                                size_t max_bytes) override;
  absl::StatusOr<uint64_t> LastCursor() override;
  absl::StatusOr<uint64_t> FirstCursor() override;
  absl::StatusOr<std::map<v1::UploadState, int64_t>> CountUploadsByState() override;

  // After RemoveListener returns, `fn` is not running and will not be called
  // again (unless RemoveListener is called from a listener or callback).
  int AddListener(std::function<void(uint64_t)> fn) override;
  void RemoveListener(int id) override;

  // False after a failed commit, until a later commit succeeds, and once
  // shutdown has begun.
  bool Healthy() override;

  // Durable subscriptions (ledger.h; rules in subscription_ops.h). Writes
  // are ordinary operations of the batches above; input is checked on the
  // committer (InvalidArgument naming the field, nothing written). Reads
  // check their input on the calling thread.
  void CreateSubscription(SubscriptionSpec spec,
                          std::function<void(absl::StatusOr<SubscriptionState>)> done) override;
  void DeleteSubscription(SubscriptionKey key, std::function<void(absl::Status)> done) override;
  absl::StatusOr<SubscriptionState> GetSubscription(const SubscriptionKey& key) override;
  absl::StatusOr<std::vector<SubscriptionState>> ListSubscriptions(
      const std::string& caller) override;
  void LeaseEvents(SubscriptionKey key, std::string holder, std::vector<uint64_t> candidates,
                   uint64_t scanned_through, int max,
                   std::function<void(absl::StatusOr<std::vector<Lease>>)> done) override;
  void AckEvents(SubscriptionKey key, std::vector<uint64_t> cursors,
                 std::function<void(absl::StatusOr<AckResult>)> done) override;
  void NackEvents(SubscriptionKey key, std::vector<uint64_t> cursors, std::string reason,
                  absl::Duration retry_after,
                  std::function<void(absl::StatusOr<AckResult>)> done) override;
  void ExtendLeases(SubscriptionKey key, std::string holder, std::vector<uint64_t> cursors,
                    absl::Duration extension,
                    std::function<void(absl::StatusOr<std::vector<uint64_t>>)> done) override;
  absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(const SubscriptionKey& key,
                                                          uint64_t after, int limit) override;
  void RedriveDeadLetters(SubscriptionKey key, std::vector<uint64_t> cursors,
                          std::function<void(absl::StatusOr<int64_t>)> done) override;
  void ClaimTarget(std::string name, std::string holder, absl::Duration lease,
                   std::function<void(absl::StatusOr<bool>)> done) override;
  void ReleaseTarget(std::string name, std::string holder,
                     std::function<void(absl::Status)> done) override;

  // Runs one retention pass (at most one chunk of each kind) now, on the
  // committer, and waits for it. Returns the number of rows deleted.
  // Retention also runs on its own; this is for tools and tests. Must not be
  // called from a `done` callback or listener.
  absl::StatusOr<int64_t> PruneNow();

 protected:
  GroupCommitLedger(Options options, std::unique_ptr<EngineWriter> writer,
                    std::unique_ptr<EngineReader> reader);

  // Reports events committed elsewhere (newest cursor): listeners run on
  // the calling thread if the cursor is newer than any reported before.
  void NotifyCommitted(uint64_t cursor);
  EngineReader& reader() { return *reader_; }

 private:
  void Enqueue(std::unique_ptr<WriteOp> op);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  }
  std::unique_ptr<WriteOp> MakePruneOp(
      std::function<void(absl::StatusOr<int64_t>)> done);
  void CommitLoop();
  void RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch);
  // Locks (EngineWriter::LockSubscriptions) every subscription and target
  // the batch's operations touch, sorted, before any operation runs.
  absl::Status LockSubscriptions(const std::vector<std::unique_ptr<WriteOp>>& batch);
  // Stores the creations batch[begin, end) with one InsertIntents call;
  // an error dooms the batch.
  absl::Status StoreCreations(std::vector<std::unique_ptr<WriteOp>>& batch, size_t begin,
                              size_t end);

  const Options options_;
  // Used only by the committer thread.
  const std::unique_ptr<EngineWriter> writer_;
  const std::unique_ptr<EngineReader> reader_;
  std::atomic<bool> healthy_{true};

  absl::Mutex mu_;
  std::deque<std::unique_ptr<WriteOp>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex listeners_mu_;
  std::map<int, std::shared_ptr<const std::function<void(uint64_t)>>>
      listeners_ ABSL_GUARDED_BY(listeners_mu_);
  int next_listener_id_ ABSL_GUARDED_BY(listeners_mu_) = 1;
  uint64_t notified_ ABSL_GUARDED_BY(listeners_mu_) = 0;
  // Notification rounds running now (each holds copies of listeners).
  int rounds_ ABSL_GUARDED_BY(listeners_mu_) = 0;

  std::thread committer_;  // last: starts after everything above exists
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_GROUP_COMMIT_LEDGER_H_
