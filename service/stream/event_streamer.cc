#include "stream/event_streamer.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "grpcpp/server_context.h"
#include "stream/event_filter.h"

namespace uploadbroker::stream {
namespace {

using Events = std::vector<v1::Event>;

// absl and gRPC share the canonical codes. (rpc::ToGrpcStatus is the same
// mapping; stream cannot depend on rpc.)
grpc::Status ToGrpc(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), std::string(st.message()));
}

grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "server is shutting down; resume after the last cursor received");
}

absl::Status OutOfRange(absl::string_view what, uint64_t after, uint64_t oldest) {
  return absl::OutOfRangeError(absl::StrCat(what, "cursor ", after,
                                            " is older than retention; oldest available is ",
                                            oldest));
}

absl::Status ValidateRequest(const v1::SubscribeRequest& req) {
  const int start = req.start();
  if (!v1::StartPosition_IsValid(start)) {
    return absl::InvalidArgumentError(absl::StrCat("start: unknown start position ", start));
  }
  if (start != v1::START_POSITION_AFTER_CURSOR && req.after_cursor() != 0) {
    return absl::InvalidArgumentError(
        "after_cursor: only allowed with start START_POSITION_AFTER_CURSOR");
  }
  return absl::OkStatus();
}

class Rejected final : public grpc::ServerWriteReactor<v1::SubscribeResponse> {
 public:
  explicit Rejected(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

// Outcome of one read of the log: events (possibly none) or an error that
// ends the streams it was read for.
struct EventStreamer::Batch {
  absl::Status status;
  std::shared_ptr<const Events> events;
};

// One Subscribe call. Owned by the streamer's registry from Subscribe until
// OnDone; pool tasks hold extra references while they run, and do nothing
// once the stream has finished.
class EventStreamer::Stream final
    : public grpc::ServerWriteReactor<v1::SubscribeResponse>,
      public std::enable_shared_from_this<Stream> {
 public:
  Stream(EventStreamer& streamer, grpc::CallbackServerContext* ctx,
         const v1::SubscribeRequest& request, EventFilter filter)
      : streamer_(streamer),
        ctx_(ctx),
        start_(request.start()),
        after_cursor_(request.after_cursor()),
        filter_(std::move(filter)) {}

  // Pool thread: resolves the start position, then starts reading.
  void Init() {
    absl::StatusOr<uint64_t> start = ResolveStart();
    if (start.ok()) streamer_.OnCommit(last_at_start_);
    absl::MutexLock lock(&mu_);
    fetching_ = false;
    if (finished_) return;
    if (!start.ok()) {
      FinishLocked(ToGrpc(start.status()));
      return;
    }
    cursor_ = *start;
    started_ = true;
    ctx_->AddInitialMetadata(kStartCursorMetadata, std::to_string(cursor_));
    StartSendInitialMetadata();
    AdvanceLocked();
  }

  // Pool thread: reads the batch after this stream's cursor. `seen` is the
  // newest cursor the streamer knew when it scheduled the read.
  void ReadOwn(uint64_t seen) {
    uint64_t after;
    bool tolerate_gap;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) {
        fetching_ = false;
        return;
      }
      after = cursor_;
      tolerate_gap = tolerate_gap_;
    }
    Deliver(after, streamer_.ReadAfter(after, seen, tolerate_gap), seen);
  }

  // Pool thread: hands over a batch read after `after` (== this cursor).
  void Deliver(uint64_t after, const Batch& batch, uint64_t seen) {
    absl::MutexLock lock(&mu_);
    fetching_ = false;
    if (finished_) return;
    if (!batch.status.ok()) {
      FinishLocked(ToGrpc(batch.status));
      return;
    }
    UB_CHECK(after == cursor_ && batch_ == nullptr);
    tolerate_gap_ = false;  // only the very first read of EARLIEST
    if (batch.events->empty()) {
      seen_ = seen;  // read again only once the log grows past `seen`
    } else {
      cursor_ = batch.events->back().cursor();
      batch_ = batch.events;
      next_ = 0;
      seen_ = 0;
    }
    AdvanceLocked();
  }

  // Shutdown: ends the stream with UNAVAILABLE once no write is in flight.
  void End() {
    absl::MutexLock lock(&mu_);
    end_requested_ = true;
    if (!writing_) FinishLocked(ShuttingDown());
  }

  // Shutdown after the grace period: the client stopped reading, so the
  // in-flight write cannot finish; cancelling fails it and ends the call.
  // TryCancel runs the reactions on other threads (they are not inlineable),
  // and OnDone cannot run before Finish, so holding mu_ here is safe.
  void Cancel() {
    absl::MutexLock lock(&mu_);
    if (!finished_) ctx_->TryCancel();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    response_.clear_event();  // an idle stream keeps no event
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed: client went away"));
      return;
    }
    AdvanceLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    // Keeps this object alive until OnDone returns; pool tasks may still
    // hold references, but they see finished_ and stop.
    std::shared_ptr<Stream> self = streamer_.Unregister(this);
  }

 private:
  // Pool thread, no lock: the cursor to start after, or why not.
  absl::StatusOr<uint64_t> ResolveStart() {
    absl::StatusOr<uint64_t> last = streamer_.ledger_.LastCursor();
    if (!last.ok()) return last.status();
    last_at_start_ = *last;
    if (start_ == v1::START_POSITION_LATEST || start_ == v1::START_POSITION_UNSPECIFIED) {
      return *last;
    }
    absl::StatusOr<uint64_t> first = streamer_.ledger_.FirstCursor();
    if (!first.ok()) return first.status();
    if (start_ == v1::START_POSITION_EARLIEST) {
      // Whatever retention removes before the first read is skipped, not
      // an error: EARLIEST means the oldest event still retained.
      absl::MutexLock lock(&mu_);
      tolerate_gap_ = true;
      return *first > 0 ? *first - 1 : *last;
    }
    if (after_cursor_ > *last) {
      return absl::InvalidArgumentError(absl::StrCat(
          "after_cursor: ", after_cursor_, " is beyond the newest cursor ", *last));
    }
    if (after_cursor_ < *last && (*first == 0 || after_cursor_ + 1 < *first)) {
      return OutOfRange("after_cursor: ", after_cursor_, *first == 0 ? *last + 1 : *first);
    }
    return after_cursor_;
  }

  // Writes the next matching event of the batch, or fetches the next batch.
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || !started_) return;
    if (end_requested_) {
      FinishLocked(ShuttingDown());
      return;
    }
    if (batch_ != nullptr) {
      while (next_ < batch_->size()) {
        const v1::Event& event = (*batch_)[next_++];
        if (!filter_.Matches(event)) continue;
        *response_.mutable_event() = event;
        writing_ = true;
        StartWrite(&response_);
        return;
      }
      batch_.reset();
      next_ = 0;
    }
    if (fetching_) return;
    fetching_ = true;
    streamer_.Fetch(shared_from_this(), cursor_, seen_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    batch_.reset();
    Finish(status);
  }

  EventStreamer& streamer_;
  grpc::CallbackServerContext* const ctx_;
  const int start_;
  const uint64_t after_cursor_;
  const EventFilter filter_;
  uint64_t last_at_start_ = 0;  // Init only

  absl::Mutex mu_;
  // Every event up to cursor_ has been read (and is written or in batch_).
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  // After an empty read: the newest cursor known when it was scheduled.
  uint64_t seen_ ABSL_GUARDED_BY(mu_) = 0;
  bool tolerate_gap_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const Events> batch_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  v1::SubscribeResponse response_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // A read is scheduled or running, or the stream is parked.
  bool fetching_ ABSL_GUARDED_BY(mu_) = true;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool end_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

EventStreamer::EventStreamer(ledger::Ledger& ledger, Options options)
    : ledger_(ledger),
      options_(options),
      pool_(std::make_unique<boost::asio::thread_pool>(
          static_cast<size_t>(std::max(1, options.read_threads)))) {
  UB_CHECK(options_.batch_size > 0);
  listener_id_ = ledger_.AddListener([this](uint64_t cursor) { OnCommit(cursor); });
}

EventStreamer::~EventStreamer() { Shutdown(); }

grpc::ServerWriteReactor<v1::SubscribeResponse>* EventStreamer::Reject(grpc::Status status) {
  return new Rejected(status);
}

grpc::ServerWriteReactor<v1::SubscribeResponse>* EventStreamer::Subscribe(
    grpc::CallbackServerContext* ctx, const v1::SubscribeRequest* request,
    const config::Caller& caller) {
  absl::Status valid = ValidateRequest(*request);
  if (!valid.ok()) return Reject(ToGrpc(valid));
  absl::StatusOr<EventFilter> filter = EventFilter::Create(request->filter(), caller);
  if (!filter.ok()) return Reject(ToGrpc(filter.status()));
  auto stream = std::make_shared<Stream>(*this, ctx, *request, *std::move(filter));
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return Reject(ShuttingDown());
    streams_.emplace(stream.get(), stream);
  }
  // Reactions requested before gRPC binds the reactor are queued by gRPC.
  Post([stream] { stream->Init(); });
  return stream.get();
}

void EventStreamer::Fetch(std::shared_ptr<Stream> stream, uint64_t cursor, uint64_t seen) {
  absl::MutexLock lock(&mu_);
  if (newest_ > std::max(cursor, seen)) {
    Post([stream, seen = newest_] { stream->ReadOwn(seen); });
  } else {
    parked_[stream.get()] = cursor;
  }
}

void EventStreamer::OnCommit(uint64_t cursor) {
  absl::MutexLock lock(&mu_);
  if (cursor <= newest_) return;
  newest_ = cursor;
  if (!parked_.empty() && !wake_scheduled_) {
    wake_scheduled_ = true;
    Post([this] { WakeParked(); });
  }
}

void EventStreamer::WakeParked() {
  uint64_t newest;
  std::map<uint64_t, std::vector<std::shared_ptr<Stream>>> by_cursor;
  {
    absl::MutexLock lock(&mu_);
    wake_scheduled_ = false;
    newest = newest_;
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second < newest) {
        by_cursor[it->second].push_back(streams_.at(it->first));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Streams parked at the same cursor share one read and one batch.
  for (auto& [after, streams] : by_cursor) {
    Batch batch = ReadAfter(after, newest, /*tolerate_gap=*/false);
    for (const auto& stream : streams) stream->Deliver(after, batch, newest);
  }
}

EventStreamer::Batch EventStreamer::ReadAfter(uint64_t after, uint64_t newest_hint,
                                              bool tolerate_gap) {
  absl::StatusOr<Events> events = ledger_.ReadEvents(after, options_.batch_size);
  if (!events.ok()) {
    return {absl::Status(events.status().code(),
                         absl::StrCat("reading the event log: ", events.status().message())),
            nullptr};
  }
  if (!events->empty()) {
    // Cursors are gap-free, so a gap means retention removed events this
    // stream has not delivered yet.
    if (!tolerate_gap && events->front().cursor() != after + 1) {
      return {OutOfRange("", after, events->front().cursor()), nullptr};
    }
    return {absl::OkStatus(), std::make_shared<const Events>(*std::move(events))};
  }
  if (newest_hint > after && !tolerate_gap) {
    // Events after `after` were committed; unless they are still there (and
    // the read raced with new commits), retention removed them all.
    absl::StatusOr<uint64_t> first = ledger_.FirstCursor();
    absl::StatusOr<uint64_t> last = ledger_.LastCursor();
    if (!first.ok() || !last.ok()) {
      absl::Status st = first.ok() ? last.status() : first.status();
      return {absl::Status(st.code(), absl::StrCat("reading the event log: ", st.message())),
              nullptr};
    }
    if (*last > after && (*first == 0 || *first > after + 1)) {
      return {OutOfRange("", after, *first == 0 ? *last + 1 : *first), nullptr};
    }
  }
  return {absl::OkStatus(), std::make_shared<const Events>()};
}

std::shared_ptr<EventStreamer::Stream> EventStreamer::Unregister(Stream* stream) {
  absl::MutexLock lock(&mu_);
  parked_.erase(stream);
  auto it = streams_.find(stream);
  UB_CHECK(it != streams_.end());
  std::shared_ptr<Stream> owned = std::move(it->second);
  streams_.erase(it);
  return owned;
}

void EventStreamer::Post(std::function<void()> task) {
  boost::asio::post(*pool_, std::move(task));
}

size_t EventStreamer::stream_count() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

void EventStreamer::Shutdown() {
  absl::MutexLock shutdown_lock(&shutdown_mu_);
  if (stopped_) return;
  // No listener may post after the pool is joined.
  ledger_.RemoveListener(listener_id_);
  std::vector<std::shared_ptr<Stream>> streams;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (const auto& entry : streams_) streams.push_back(entry.second);
  }
  for (const auto& stream : streams) stream->End();
  streams.clear();
  const absl::Condition all_done(this, &EventStreamer::AllDone);
  {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(all_done, options_.shutdown_grace)) {
      for (const auto& entry : streams_) streams.push_back(entry.second);
    }
  }
  for (const auto& stream : streams) stream->Cancel();
  streams.clear();
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(all_done);
  }
  pool_->join();
  stopped_ = true;
}

}  // namespace uploadbroker::stream
