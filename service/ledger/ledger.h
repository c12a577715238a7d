// Ledger: durable upload intents plus an append-only event log with cursors.
//
// The ledger is the product's source of truth. Every write is durable (on
// disk, fsynced) before its completion callback runs; a caller acknowledges
// nothing to anyone before that callback. Implementations are thread-safe:
// any thread may call any method.
//
// Completion callbacks (`done`) run on an implementation-owned thread; they
// must be quick and must not call back into the ledger synchronously.
#ifndef UPLOADBROKER_LEDGER_LEDGER_H_
#define UPLOADBROKER_LEDGER_LEDGER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/subscriptions.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::ledger {

using v1::Completion;
using v1::Event;
using v1::Upload;

// Result of CompleteUpload.
struct CompleteResult {
  // The UploadCompleted event (new, or the one recorded earlier).
  Event event;
  // False when the upload was already completed and nothing was appended.
  bool appended = false;
};

// Decides, inside the transaction that would complete it, whether an upload
// may be completed: called with the intent as stored (any state) after it
// was found. A non-OK status aborts that one operation (nothing is written)
// and becomes its result. Runs on the ledger's thread, once per attempt;
// must be quick and must not call into the ledger.
using CompletionCheck = std::function<absl::Status(const Upload& intent)>;

// Narrows ListUploads. Empty fields match everything.
struct UploadQuery {
  std::vector<std::string> buckets;
  std::vector<std::string> callers;  // uploads issued to any of these; empty: any
  std::string key_prefix;  // keys (or key prefixes) starting with this
  // Keys (or key prefixes) starting with any of these (empty: any): the
  // reader's scope, so that every upload of a page is one it may see and a
  // page's last upload can mark the position of the next.
  std::vector<std::string> scope_prefixes;
  v1::UploadState state = v1::UPLOAD_STATE_UNSPECIFIED;
  // Page: uploads created strictly before this position (opaque to callers;
  // 0 = from the newest).
  int64_t before_seq = 0;
  // Page by position of a listed upload: uploads created strictly before
  // the one with this id (none if there is no such upload). Used instead of
  // before_seq when set; ListUploads' page tokens name the last upload of
  // the page (which the caller has seen), not a global sequence number.
  std::string before_upload_id;
  int limit = 100;
  // Page size in bytes (0: no limit): the page stops before an upload whose
  // UploadBytes() would take the page's total past this (it still holds at
  // least one upload), and says there is a next page.
  size_t max_bytes = 0;
};

// What `upload` adds to a message listing it (a repeated Upload field): its
// serialized size plus the field's tag and length.
size_t UploadBytes(const Upload& upload);

// Stored event records as the log keeps them, unparsed: `data` holds the
// records back to back, each one Event in protobuf wire format (its cursor
// included), and `entries` says where each starts, in cursor order.
struct EventRecords {
  struct Entry {
    uint64_t cursor = 0;
    size_t offset = 0;  // into data
    size_t size = 0;
  };
  std::string data;
  std::vector<Entry> entries;
};

struct UploadPage {
  std::vector<Upload> uploads;
  int64_t next_before_seq = 0;  // 0 when this is the last page
};

class Ledger {
 public:
  virtual ~Ledger() = default;

  // Stores a new PENDING intent. AlreadyExists if the upload_id is taken.
  virtual void CreateIntent(Upload intent,
                            std::function<void(absl::Status)> done) = 0;

  // Marks the intent COMPLETED with `completion` and appends one
  // UploadCompleted event, in one transaction. NotFound if there is no such
  // intent; otherwise `check` (if not null) sees the stored intent first and
  // its error, if any, is the result. Then: if the intent was already
  // completed, returns the earlier event with appended=false and writes
  // nothing; FailedPrecondition if it is EXPIRED.
  virtual void CompleteUpload(
      std::string upload_id, Completion completion, CompletionCheck check,
      std::function<void(absl::StatusOr<CompleteResult>)> done) = 0;
  // The same without a check.
  void CompleteUpload(std::string upload_id, Completion completion,
                      std::function<void(absl::StatusOr<CompleteResult>)> done) {
    CompleteUpload(std::move(upload_id), std::move(completion), nullptr,
                   std::move(done));
  }

  // Marks a PENDING intent EXPIRED with `reason` (stored as the upload's
  // expiry_reason, so GetUpload and the event both carry it) and appends one
  // UploadExpired event. FailedPrecondition if it is not PENDING.
  virtual void ExpireUpload(std::string upload_id, v1::ExpiryReason reason,
                            std::function<void(absl::StatusOr<Event>)> done) = 0;

  // Reads one upload. NotFound if absent.
  virtual absl::StatusOr<Upload> GetUpload(const std::string& upload_id) = 0;

  // Lists uploads, newest first.
  virtual absl::StatusOr<UploadPage> ListUploads(const UploadQuery& query) = 0;

  // PENDING intents whose expiry is at or before `cutoff`, oldest first,
  // for the reconciler to probe. Each one returned is claimed for `lease`:
  // until then another broker sharing the ledger skips it, so one broker at
  // a time probes an intent (a single-process engine has no one to exclude
  // and may ignore the lease).
  virtual absl::StatusOr<std::vector<Upload>> ClaimExpiredPending(
      absl::Time cutoff, int limit, absl::Duration lease) = 0;

  // Up to `limit` events with cursor > after, in cursor order, as their
  // stored records (not parsed or checked), for callers that forward the
  // bytes. Also stops before a record that would take `data` past
  // `max_bytes` (but always returns at least one record when there is one).
  virtual absl::StatusOr<EventRecords> ReadEventRecords(uint64_t after, int limit,
                                                        size_t max_bytes) = 0;
  // The same events parsed (ReadEventRecords without a byte limit); DataLoss
  // naming the cursor when a stored record does not parse.
  absl::StatusOr<std::vector<Event>> ReadEvents(uint64_t after, int limit);

  // Cursor of the newest event ever appended (0 if none; retention does not
  // move it back) and of the oldest retained one (0 if none is retained).
  virtual absl::StatusOr<uint64_t> LastCursor() = 0;
  virtual absl::StatusOr<uint64_t> FirstCursor() = 0;

  // Registers `fn` to be called (on the ledger's thread, no lock held) with
  // the newest cursor after every commit that appended events. Returns an id
  // for RemoveListener. Listeners must be quick and non-blocking.
  virtual int AddListener(std::function<void(uint64_t)> fn) = 0;
  virtual void RemoveListener(int id) = 0;

  // Number of uploads in each state (for metrics).
  virtual absl::StatusOr<std::map<v1::UploadState, int64_t>> CountUploadsByState() = 0;

  // True while writes are being accepted (for /readyz).
  virtual bool Healthy() = 0;

  // --- Durable subscriptions (subscriptions.h: the progress model). ---
  // Writes run on the committer like every other write; `now` is the
  // ledger's clock. Every method answers NotFound for a subscription that
  // does not exist (the RPC layer maps another caller's to the same answer).
  // Input is checked at the ledger: InvalidArgument naming the field
  // (limits in subscriptions.h), nothing written. GroupCommitLedger (SQLite,
  // PostgreSQL) implements them; other ledgers answer Unimplemented.

  // Creates `spec` (state: floor = scanned = spec.start_after), or returns
  // the existing one unchanged when its settings are the same;
  // AlreadyExists naming the first differing setting otherwise;
  // ResourceExhausted past 1,000 subscriptions of one caller.
  virtual void CreateSubscription(
      SubscriptionSpec spec,
      std::function<void(absl::StatusOr<SubscriptionState>)> done);
  // Deletes it with its delivery rows and dead letters.
  virtual void DeleteSubscription(SubscriptionKey key,
                                  std::function<void(absl::Status)> done);
  virtual absl::StatusOr<SubscriptionState> GetSubscription(const SubscriptionKey& key);
  // Every subscription of `caller` (empty: of every caller), by (caller, name).
  virtual absl::StatusOr<std::vector<SubscriptionState>> ListSubscriptions(
      const std::string& caller);

  // Leases up to `max` events to `holder` until now + the ack deadline, in
  // cursor order among those available: first rows whose lease ran out
  // (recorded as a failed attempt "deadline passed") or whose retry time
  // has come, then `candidates` -- ascending cursors above `scanned` that
  // match the filter, all <= scanned_through -- which get new rows. Then
  // scanned = scanned_through, or just below the first candidate left out
  // by `max`. A row whose next attempt would pass max_delivery_attempts
  // becomes dead instead of being leased. Advances the floor.
  // Candidates at or below the current `scanned` are ignored (another
  // dispatcher got there first, so they have rows already), and `scanned`
  // never moves back: dispatchers may race, each proposing what it read
  // after the `scanned` it last saw. Returned leases are in cursor order.
  virtual void LeaseEvents(SubscriptionKey key, std::string holder,
                           std::vector<uint64_t> candidates, uint64_t scanned_through,
                           int max,
                           std::function<void(absl::StatusOr<std::vector<Lease>>)> done);
  // Acknowledges delivered events (leased now or before, by anyone;
  // repeating an ack is harmless). Cursors never delivered for the
  // subscription are returned in AckResult::unknown and change nothing.
  // Advances the floor. An acknowledged event is never leased again. A late
  // ack of a dead letter settles it (it leaves the dead letters).
  virtual void AckEvents(SubscriptionKey key, std::vector<uint64_t> cursors,
                         std::function<void(absl::StatusOr<AckResult>)> done);
  // Records a failed attempt with `reason` for each delivered, unacknowledged
  // cursor and makes it available again at now + retry_after (dead instead
  // when its attempts reached the maximum). Acknowledged and dead ones are
  // left alone; never-delivered ones are returned in `unknown`.
  virtual void NackEvents(SubscriptionKey key, std::vector<uint64_t> cursors,
                          std::string reason, absl::Duration retry_after,
                          std::function<void(absl::StatusOr<AckResult>)> done);
  // Moves the lease end of `cursors` held by `holder` to now + extension
  // (at most 10 minutes). Cursors not held by `holder` (including leases
  // of its that already ran out) are left alone and returned.
  virtual void ExtendLeases(SubscriptionKey key, std::string holder,
                            std::vector<uint64_t> cursors, absl::Duration extension,
                            std::function<void(absl::StatusOr<std::vector<uint64_t>>)> done);
  // Dead letters with cursor > after, in cursor order, at most `limit`.
  virtual absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(
      const SubscriptionKey& key, uint64_t after, int limit);
  // Makes the named dead letters (all, when `cursors` is empty: up to
  // 10,000 per call) available again at once with their attempts and
  // reasons reset; returns how many were redriven (cursors that are not
  // dead letters are skipped). A redriven event below the floor is leased
  // again without moving the floor back.
  virtual void RedriveDeadLetters(SubscriptionKey key, std::vector<uint64_t> cursors,
                                  std::function<void(absl::StatusOr<int64_t>)> done);

  // Push targets: one broker drives a target at a time. Takes or renews
  // target `name`'s lease for `holder` until now + lease, and says whether
  // `holder` holds it; another holder's lease is taken only once it has run
  // out (so no live broker is needed to release it).
  virtual void ClaimTarget(std::string name, std::string holder, absl::Duration lease,
                           std::function<void(absl::StatusOr<bool>)> done);
  // Gives the lease up at once if `holder` holds it (shutdown).
  virtual void ReleaseTarget(std::string name, std::string holder,
                             std::function<void(absl::Status)> done);
};

// Blocking helpers over the callback API, for tools, tests and threads of
// their own (the reconciler). They wait
// for the `done` callback, so never call them from one (or from a listener).
absl::Status CreateIntentSync(Ledger& ledger, Upload intent);
absl::StatusOr<CompleteResult> CompleteUploadSync(Ledger& ledger,
                                                  std::string upload_id,
                                                  Completion completion,
                                                  CompletionCheck check = nullptr);
absl::StatusOr<Event> ExpireUploadSync(Ledger& ledger, std::string upload_id,
                                       v1::ExpiryReason reason = v1::EXPIRY_REASON_EXPIRED);

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_LEDGER_H_
