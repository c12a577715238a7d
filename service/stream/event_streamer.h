// EventStreamer: serves Subscribe. It owns every Subscribe reactor, follows
// the ledger's event log for them and drains them at shutdown.
//
// The log is the only buffer (gRPC's health WatchReactor, plus a cursor):
// each stream remembers the cursor of the last event it read, reads the
// next batch after it, writes the matching events with one write in flight
// and, once caught up, parks until the ledger reports a newer cursor. A
// stream holds at most two batches (`batch_size` events each: the one it is
// writing and the next), so a subscriber that stops reading only falls
// behind in the log, delaying nobody.
//
// Sharing: batches are read once for every stream that needs the events
// after the same cursor. Reads in progress are joined, and the most recent
// `shared_batches` non-empty batches are kept, so streams that reach a
// cursor later (they finished a write, or woke from parking) take the batch
// without reading the log again. Events are never re-serialized: a message
// is built from the stored records (see event_batch.h), so Subscribe is
// served as a raw (ByteBuffer) method.
//
// Messages: one event per SubscribeResponse (`event`) unless the request
// sets max_events_per_message > 1; then every write carries as many
// matching events as the held batches have ready (`events`), up to that
// count (capped at kMaxEventsPerMessage) and kMaxMessageBytes.
//
// Threads: reactions (Subscribe, OnWriteDone, OnCancel, OnDone) run on gRPC
// threads and never block: every ledger read (start position, batches) runs
// on a small pool owned by the streamer. The ledger listener only records
// the newest cursor and schedules one task that wakes the parked streams.
//
// Start positions: LATEST (or unset) starts after the newest cursor at
// stream start, EARLIEST before the oldest retained event, AFTER_CURSOR after
// `after_cursor`. The resolved start is sent as initial metadata
// `ub-start-cursor` before any event, so a client that has not received an
// event yet can still resume without a gap. Errors (as gRPC statuses):
// INVALID_ARGUMENT for a malformed request or a cursor beyond the newest,
// RESOURCE_EXHAUSTED when the caller already has streams_per_caller open,
// PERMISSION_DENIED for a filter outside the caller's scope, OUT_OF_RANGE
// when events after the cursor were removed by retention (at start, or
// because the stream fell that far behind), UNAVAILABLE at shutdown.
//
// Revocation: after the callers are reloaded, Recheck() re-authenticates
// every open stream's credential against the new snapshot and rebuilds its
// filter from the caller's new scope (Stream::Recheck, under that stream's
// own lock, like every other change to it). A stream whose API key or
// certificate no longer names its caller ends with UNAUTHENTICATED, one
// whose filter the new scope or read_callers no longer cover with
// PERMISSION_DENIED (after a write in flight, if any; nothing more is
// written); the others continue, filtered by the new scope. A stream that
// authenticated before a reload but registers after its Recheck is checked
// as it registers. Any other long-lived call (a future Consume) follows the
// same path: hold the auth::Principal, re-check it on reload.
//
// Lifetime: construct after the ledger, call Shutdown() before stopping the
// grpc::Server, destroy after the grpc::Server and before the ledger.
#ifndef UPLOADBROKER_STREAM_EVENT_STREAMER_H_
#define UPLOADBROKER_STREAM_EVENT_STREAMER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/authenticator.h"
#include "auth/identity.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "ledger/ledger.h"
#include "stream/event_batch.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace grpc {
class CallbackServerContext;
}  // namespace grpc

namespace uploadbroker::stream {

// Initial-metadata key carrying the cursor a stream starts after.
inline constexpr char kStartCursorMetadata[] = "ub-start-cursor";

class EventStreamer {
 public:
  struct Options {
    // Threads reading the log for all streams.
    int read_threads = 2;
    // Most events (and record bytes) read per batch; a stream holds at most
    // two batches.
    int batch_size = 256;
    size_t batch_bytes = 1 << 20;
    // Recent non-empty batches kept (until newer ones replace them) for
    // streams that ask for them later: at most shared_batches x batch_bytes
    // of records for the whole streamer, typically a few events each.
    int shared_batches = 16;
    // How long Shutdown() lets in-flight writes finish before cancelling
    // the streams whose client stopped reading.
    absl::Duration shutdown_grace = absl::Seconds(5);
    // Streams one caller (Identity::name) may have open at once (0: no
    // limit); Subscribe beyond it is RESOURCE_EXHAUSTED naming the limit,
    // and `on_refused` (if set) is called with the caller's name.
    int streams_per_caller = 0;
    std::function<void(const std::string& caller)> on_refused;
  };

  // `ledger` must outlive the streamer. Registers a ledger listener.
  explicit EventStreamer(ledger::Ledger& ledger) : EventStreamer(ledger, Options()) {}
  EventStreamer(ledger::Ledger& ledger, Options options);
  ~EventStreamer();  // Shutdown(), if not done yet

  EventStreamer(const EventStreamer&) = delete;
  EventStreamer& operator=(const EventStreamer&) = delete;

  // The reactor type of the raw Subscribe method: it writes serialized
  // SubscribeResponse messages.
  using Reactor = grpc::ServerWriteReactor<grpc::ByteBuffer>;

  // Decodes the raw Subscribe request (INVALID_ARGUMENT if malformed).
  static absl::StatusOr<v1::SubscribeRequest> ParseRequest(const grpc::ByteBuffer& raw);

  // Starts a stream for an authenticated `caller` (copied: the stream holds
  // the Principal, and with it the caller snapshot, until it is done or a
  // Recheck moves it to a newer one). Called by the gRPC service on a gRPC
  // thread; never blocks.
  Reactor* Subscribe(grpc::CallbackServerContext* ctx, const v1::SubscribeRequest& request,
                     const auth::Principal& caller);

  // Call after `auth.Reload` (on the reloading thread, not a gRPC reaction:
  // it takes each stream's lock in turn): ends the streams the reload
  // revoked, see "Revocation" above. When it returns, no revoked stream
  // writes another event. `auth` must outlive the streamer (streams that
  // register later are checked against it). Any thread.
  void Recheck(const auth::Authenticator& auth);

  // A reactor that finishes at once with `status` (e.g. UNAUTHENTICATED).
  static Reactor* Reject(grpc::Status status);

  // Refuses new streams, ends every stream with UNAVAILABLE after its
  // in-flight write, cancels those still writing after `shutdown_grace`
  // (clients that stopped reading), and blocks until all are done. Any
  // thread; idempotent.
  void Shutdown();

  // Streams not yet done (for tests and metrics).
  size_t stream_count() const;
  // Those of one caller.
  int stream_count(const std::string& caller) const;

 private:
  class Stream;
  using BatchPtr = std::shared_ptr<const EventBatch>;
  using StreamPtr = std::shared_ptr<Stream>;
  // Outcome of one read of the log: a batch (possibly empty) or an error
  // that ends the streams it was read for.
  struct ReadResult {
    absl::Status status;
    BatchPtr batch;
  };

  // For `stream` (its lock held), which needs the events after `cursor`:
  // returns a shared batch at once if one is kept; otherwise joins or
  // schedules a read (which calls Stream::Deliver), or parks the stream
  // until the log grows past max(cursor, seen). `tolerate_gap` (the first
  // read of EARLIEST) reads for this stream alone.
  BatchPtr Fetch(const StreamPtr& stream, uint64_t cursor, uint64_t seen, bool tolerate_gap);
  // Joins or starts the shared read after `after` for `streams` (moved
  // from), unless a kept batch answers it: then returns it and leaves
  // `streams` to the caller, who delivers it.
  BatchPtr RequestLocked(uint64_t after, std::vector<StreamPtr>& streams)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pool task: the shared read after `after`, delivered to its waiters.
  void ReadShared(uint64_t after, uint64_t newest);
  // Reads the batch after `after`; detects events removed by retention
  // (OutOfRange). Pool threads only; no lock held.
  ReadResult ReadAfter(uint64_t after, uint64_t newest_hint, bool tolerate_gap);
  // Ledger listener: records `cursor` and wakes parked streams.
  void OnCommit(uint64_t cursor);
  // Pool task: one shared read (or kept batch) per distinct parked cursor.
  void WakeParked();
  StreamPtr Unregister(Stream* stream);
  void Post(std::function<void()> task);
  bool AllDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); }

  ledger::Ledger& ledger_;
  const Options options_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  int listener_id_ = 0;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Every stream not yet done; the registry's reference keeps it alive.
  std::map<Stream*, StreamPtr> streams_ ABSL_GUARDED_BY(mu_);
  // Each stream's caller, and how many streams each caller has open.
  std::map<Stream*, std::string> stream_callers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> per_caller_ ABSL_GUARDED_BY(mu_);
  // The last Recheck's authenticator and snapshot number: a stream whose
  // Principal is older registers after that Recheck and is checked then.
  const auth::Authenticator* recheck_auth_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t rechecked_generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Caught-up streams and the cursor each waits after.
  std::map<Stream*, uint64_t> parked_ ABSL_GUARDED_BY(mu_);
  uint64_t newest_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  // Shared reads in progress: the cursor read after, and who waits for it.
  std::map<uint64_t, std::vector<StreamPtr>> reading_ ABSL_GUARDED_BY(mu_);
  // The newest non-empty batches, by the cursor they were read after.
  std::map<uint64_t, BatchPtr> kept_ ABSL_GUARDED_BY(mu_);

  absl::Mutex shutdown_mu_;  // serializes Shutdown()
  bool stopped_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace uploadbroker::stream

#endif  // UPLOADBROKER_STREAM_EVENT_STREAMER_H_
