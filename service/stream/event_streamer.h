// EventStreamer: serves Subscribe. It owns every Subscribe reactor, follows
// the ledger's event log for them and drains them at shutdown.
//
// The log is the only buffer (gRPC's health WatchReactor, plus a cursor):
// each stream remembers the cursor of the last event it read, reads the
// next batch after it, writes the matching events one at a time (one write
// in flight) and, once caught up, parks until the ledger reports a newer
// cursor. A stream therefore holds at most one batch (`batch_size` events,
// shared with every stream parked at the same cursor); a subscriber that
// stops reading only falls behind in the log, delaying nobody.
//
// Threads: reactions (Subscribe, OnWriteDone, OnCancel, OnDone) run on gRPC
// threads and never block: every ledger read (start position, batches) runs
// on a small pool owned by the streamer. The ledger listener only records
// the newest cursor and schedules one read for the parked streams.
//
// Start positions: LATEST (or unset) starts after the newest cursor at
// stream start, EARLIEST before the oldest retained event, AFTER_CURSOR after
// `after_cursor`. The resolved start is sent as initial metadata
// `ub-start-cursor` before any event, so a client that has not received an
// event yet can still resume without a gap. Errors (as gRPC statuses):
// INVALID_ARGUMENT for a malformed request or a cursor beyond the newest,
// PERMISSION_DENIED for a filter outside the caller's scope, OUT_OF_RANGE
// when events after the cursor were removed by retention (at start, or
// because the stream fell that far behind), UNAVAILABLE at shutdown.
//
// Lifetime: construct after the ledger, call Shutdown() before stopping the
// grpc::Server, destroy after the grpc::Server and before the ledger.
#ifndef UPLOADBROKER_STREAM_EVENT_STREAMER_H_
#define UPLOADBROKER_STREAM_EVENT_STREAMER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "ledger/ledger.h"
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
    // Most events read (and held) per stream at a time.
    int batch_size = 256;
    // How long Shutdown() lets in-flight writes finish before cancelling
    // the streams whose client stopped reading.
    absl::Duration shutdown_grace = absl::Seconds(5);
  };

  // `ledger` must outlive the streamer. Registers a ledger listener.
  explicit EventStreamer(ledger::Ledger& ledger) : EventStreamer(ledger, Options()) {}
  EventStreamer(ledger::Ledger& ledger, Options options);
  ~EventStreamer();  // Shutdown(), if not done yet

  EventStreamer(const EventStreamer&) = delete;
  EventStreamer& operator=(const EventStreamer&) = delete;

  // Starts a stream for an authenticated `caller` (copied; need not outlive
  // the call). Called by the gRPC service on a gRPC thread; never blocks.
  grpc::ServerWriteReactor<v1::SubscribeResponse>* Subscribe(
      grpc::CallbackServerContext* ctx, const v1::SubscribeRequest* request,
      const config::Caller& caller);

  // A reactor that finishes at once with `status` (e.g. UNAUTHENTICATED).
  static grpc::ServerWriteReactor<v1::SubscribeResponse>* Reject(grpc::Status status);

  // Refuses new streams, ends every stream with UNAVAILABLE after its
  // in-flight write, cancels those still writing after `shutdown_grace`
  // (clients that stopped reading), and blocks until all are done. Any
  // thread; idempotent.
  void Shutdown();

  // Streams not yet done (for tests and metrics).
  size_t stream_count() const;

 private:
  class Stream;
  struct Batch;

  // Schedules a read for `stream` after `cursor`, or parks it until the log
  // grows past max(cursor, seen). Called with the stream's lock held.
  void Fetch(std::shared_ptr<Stream> stream, uint64_t cursor, uint64_t seen);
  // Reads up to batch_size events after `after`; detects events removed by
  // retention (OutOfRange). Pool threads only; no lock held.
  Batch ReadAfter(uint64_t after, uint64_t newest_hint, bool tolerate_gap);
  // Ledger listener: records `cursor` and wakes parked streams.
  void OnCommit(uint64_t cursor);
  // Pool task: one shared read per distinct parked cursor.
  void WakeParked();
  std::shared_ptr<Stream> Unregister(Stream* stream);
  void Post(std::function<void()> task);
  bool AllDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); }

  ledger::Ledger& ledger_;
  const Options options_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  int listener_id_ = 0;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Every stream not yet done; the registry's reference keeps it alive.
  std::map<Stream*, std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  // Caught-up streams and the cursor each waits after.
  std::map<Stream*, uint64_t> parked_ ABSL_GUARDED_BY(mu_);
  uint64_t newest_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_scheduled_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex shutdown_mu_;  // serializes Shutdown()
  bool stopped_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace uploadbroker::stream

#endif  // UPLOADBROKER_STREAM_EVENT_STREAMER_H_
