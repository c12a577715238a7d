// EventStreamer::Stream: one Subscribe call (internal to the streamer).
//
// Owned by the streamer's registry from Subscribe until OnDone; pool tasks
// and shared reads hold extra references while they run or wait, and do
// nothing once the stream has finished. All state is guarded by the
// stream's mutex; lock order: a stream's mu_, then the streamer's mu_ (never
// a stream's lock while holding the streamer's).
#ifndef UPLOADBROKER_STREAM_EVENT_STREAM_H_
#define UPLOADBROKER_STREAM_EVENT_STREAM_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "auth/authenticator.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "stream/event_batch.h"
#include "stream/event_filter.h"
#include "stream/event_streamer.h"

namespace uploadbroker::stream {

// How every stream ends at shutdown.
grpc::Status ShuttingDown();
// Events after `after` were removed by retention; `oldest` is retained.
absl::Status OutOfRange(absl::string_view what, uint64_t after, uint64_t oldest);

class EventStreamer::Stream final : public EventStreamer::Reactor,
                                    public std::enable_shared_from_this<Stream> {
 public:
  Stream(EventStreamer& streamer, grpc::CallbackServerContext* ctx,
         const v1::SubscribeRequest& request, auth::Principal caller, EventFilter filter);

  // Pool thread: resolves the start position, then starts reading.
  void Init();
  // Any thread, no lock held: hands over the result of a read after
  // `after` (== this stream's cursor). `seen` is the newest cursor the
  // streamer knew when it scheduled the read.
  void Deliver(uint64_t after, const ReadResult& result, uint64_t seen);
  // Shutdown: ends the stream with UNAVAILABLE once no write is in flight.
  void End();
  // After a reload of the callers (any thread that may block briefly, never
  // a reaction; no lock held): re-authenticates the stream's credential
  // (auth::Authenticator::Recheck) and rebuilds its filter from the request
  // and the caller's current scope. A revoked credential ends the stream
  // with UNAUTHENTICATED, a filter the scope no longer covers with
  // PERMISSION_DENIED, once no write is in flight; nothing is written after
  // this returns. Otherwise the stream continues with the narrowed (or
  // widened) filter and releases the old snapshot.
  void Recheck(const auth::Authenticator& auth);
  // Shutdown after the grace period: cancels a stream whose client stopped
  // reading (its in-flight write cannot finish).
  void Cancel();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Pool thread, no lock: the cursor to start after, or why not.
  absl::StatusOr<uint64_t> ResolveStart();
  // Writes what the held batches have ready and fetches the next batch
  // while there is room for one.
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a write of the next matching event(s), if any are held.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeLocked(BatchPtr batch, uint64_t seen) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the current batch once every event of it has been looked at.
  void DropWrittenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventStreamer& streamer_;
  grpc::CallbackServerContext* const ctx_;
  const int start_;
  const uint64_t after_cursor_;
  // 1: one event per message (SubscribeResponse.event); more: `events`.
  const uint32_t max_per_message_;
  const v1::EventFilter requested_;  // the request's filter, rebuilt on Recheck
  uint64_t last_at_start_ = 0;  // Init only

  absl::Mutex mu_;
  // Who the stream serves (keeps its caller snapshot alive) and what it
  // delivers; both replaced by Recheck.
  auth::Principal caller_ ABSL_GUARDED_BY(mu_);
  EventFilter filter_ ABSL_GUARDED_BY(mu_);
  // Every event up to cursor_ has been read (and is written or held).
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  // After an empty read: the newest cursor known when it was scheduled.
  uint64_t seen_ ABSL_GUARDED_BY(mu_) = 0;
  bool tolerate_gap_ ABSL_GUARDED_BY(mu_) = false;
  // The batch being written (from event next_ on) and the one after it.
  BatchPtr batch_ ABSL_GUARDED_BY(mu_);
  BatchPtr next_batch_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  // The message of the write in flight.
  grpc::ByteBuffer message_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // A read is scheduled or running, or the stream is parked.
  bool fetching_ ABSL_GUARDED_BY(mu_) = true;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // Set by End or Recheck: how the stream ends once no write is in flight.
  std::optional<grpc::Status> end_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace uploadbroker::stream

#endif  // UPLOADBROKER_STREAM_EVENT_STREAM_H_
