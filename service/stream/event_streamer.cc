#include "stream/event_streamer.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/grpc_status.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "stream/event_filter.h"
#include "stream/event_stream.h"

namespace uploadbroker::stream {
namespace {

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

class Rejected final : public EventStreamer::Reactor {
 public:
  explicit Rejected(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

EventStreamer::EventStreamer(ledger::Ledger& ledger, Options options)
    : ledger_(ledger),
      options_(options),
      pool_(std::make_unique<boost::asio::thread_pool>(
          static_cast<size_t>(std::max(1, options.read_threads)))) {
  UB_CHECK(options_.batch_size > 0);
  listener_id_ = ledger_.AddListener([this](uint64_t cursor) { OnCommit(cursor); });
}

EventStreamer::~EventStreamer() { Shutdown(); }

EventStreamer::Reactor* EventStreamer::Reject(grpc::Status status) {
  return new Rejected(status);
}

absl::StatusOr<v1::SubscribeRequest> EventStreamer::ParseRequest(const grpc::ByteBuffer& raw) {
  grpc::ByteBuffer copy(raw);  // the reader needs a mutable buffer; this copies references
  grpc::ProtoBufferReader reader(&copy);
  v1::SubscribeRequest request;
  if (!request.ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError("malformed SubscribeRequest");
  }
  return request;
}

EventStreamer::Reactor* EventStreamer::Subscribe(grpc::CallbackServerContext* ctx,
                                                 const v1::SubscribeRequest& request,
                                                 const auth::Principal& principal) {
  const auth::Identity& caller = *principal;
  absl::Status valid = ValidateRequest(request);
  if (!valid.ok()) return Reject(common::ToGrpcStatus(valid));
  absl::StatusOr<EventFilter> filter = EventFilter::Create(request.filter(), caller);
  if (!filter.ok()) return Reject(common::ToGrpcStatus(filter.status()));
  auto stream = std::make_shared<Stream>(*this, ctx, request, principal, *std::move(filter));
  const auth::Authenticator* recheck = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return Reject(ShuttingDown());
    int& open = per_caller_[caller.name];
    if (options_.streams_per_caller > 0 && open >= options_.streams_per_caller) {
      if (open == 0) per_caller_.erase(caller.name);
      if (options_.on_refused) options_.on_refused(caller.name);
      return Reject(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("caller '", caller.name, "' already has ", open,
                       " Subscribe streams open, the most limits.subscribe_streams_per_caller (",
                       options_.streams_per_caller, ") allows; close one first")));
    }
    ++open;
    streams_.emplace(stream.get(), stream);
    stream_callers_.emplace(stream.get(), caller.name);
    if (principal.generation < rechecked_generation_) recheck = recheck_auth_;
  }
  // Authenticated before a reload whose Recheck did not see this stream.
  if (recheck != nullptr) stream->Recheck(*recheck);
  // Reactions requested before gRPC binds the reactor are queued by gRPC.
  Post([stream] { stream->Init(); });
  return stream.get();
}

EventStreamer::BatchPtr EventStreamer::Fetch(const StreamPtr& stream, uint64_t cursor,
                                             uint64_t seen, bool tolerate_gap) {
  absl::MutexLock lock(&mu_);
  if (newest_ <= std::max(cursor, seen)) {
    parked_[stream.get()] = cursor;
    return nullptr;
  }
  if (tolerate_gap) {
    Post([this, stream, cursor, newest = newest_] {
      stream->Deliver(cursor, ReadAfter(cursor, newest, /*tolerate_gap=*/true), newest);
    });
    return nullptr;
  }
  std::vector<StreamPtr> streams = {stream};
  return RequestLocked(cursor, streams);
}

EventStreamer::BatchPtr EventStreamer::RequestLocked(uint64_t after,
                                                     std::vector<StreamPtr>& streams) {
  if (auto kept = kept_.find(after); kept != kept_.end()) return kept->second;
  auto [it, inserted] = reading_.try_emplace(after);
  for (StreamPtr& stream : streams) it->second.push_back(std::move(stream));
  if (inserted) Post([this, after, newest = newest_] { ReadShared(after, newest); });
  return nullptr;
}

void EventStreamer::ReadShared(uint64_t after, uint64_t newest) {
  const ReadResult result = ReadAfter(after, newest, /*tolerate_gap=*/false);
  std::vector<StreamPtr> waiting;
  {
    absl::MutexLock lock(&mu_);
    auto it = reading_.find(after);
    UB_CHECK(it != reading_.end());
    waiting = std::move(it->second);
    reading_.erase(it);
    // Only non-empty batches are kept: they stay valid (events never
    // change), while an empty read is only true of the moment it ran.
    if (result.status.ok() && !result.batch->empty() && options_.shared_batches > 0) {
      kept_[after] = result.batch;
      if (kept_.size() > static_cast<size_t>(options_.shared_batches)) kept_.erase(kept_.begin());
    }
  }
  for (const StreamPtr& stream : waiting) stream->Deliver(after, result, newest);
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
  std::map<uint64_t, std::vector<StreamPtr>> by_cursor;
  std::vector<std::tuple<uint64_t, BatchPtr, std::vector<StreamPtr>>> answered;
  uint64_t newest;
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
    // Streams parked at the same cursor share one read and one batch.
    for (auto& [after, streams] : by_cursor) {
      if (BatchPtr kept = RequestLocked(after, streams); kept != nullptr) {
        answered.emplace_back(after, std::move(kept), std::move(streams));
      }
    }
  }
  for (auto& [after, batch, streams] : answered) {
    const ReadResult result{absl::OkStatus(), batch};
    for (const StreamPtr& stream : streams) stream->Deliver(after, result, newest);
  }
}

EventStreamer::ReadResult EventStreamer::ReadAfter(uint64_t after, uint64_t newest_hint,
                                                   bool tolerate_gap) {
  auto read_error = [](const absl::Status& st) {
    return ReadResult{
        absl::Status(st.code(), absl::StrCat("reading the event log: ", st.message())), nullptr};
  };
  absl::StatusOr<ledger::EventRecords> records =
      ledger_.ReadEventRecords(after, options_.batch_size, options_.batch_bytes);
  if (!records.ok()) return read_error(records.status());
  if (!records->entries.empty()) {
    // Cursors are gap-free, so a gap means retention removed events this
    // stream has not delivered yet.
    const uint64_t first = records->entries.front().cursor;
    if (!tolerate_gap && first != after + 1) return {OutOfRange("", after, first), nullptr};
    absl::StatusOr<BatchPtr> batch = EventBatch::Parse(*std::move(records));
    if (!batch.ok()) return read_error(batch.status());
    return {absl::OkStatus(), *std::move(batch)};
  }
  if (newest_hint > after && !tolerate_gap) {
    // Events after `after` were committed; unless they are still there (and
    // the read raced with new commits), retention removed them all.
    absl::StatusOr<uint64_t> first = ledger_.FirstCursor();
    absl::StatusOr<uint64_t> last = ledger_.LastCursor();
    if (!first.ok()) return read_error(first.status());
    if (!last.ok()) return read_error(last.status());
    if (*last > after && (*first == 0 || *first > after + 1)) {
      return {OutOfRange("", after, *first == 0 ? *last + 1 : *first), nullptr};
    }
  }
  return {absl::OkStatus(), EventBatch::Empty()};
}

EventStreamer::StreamPtr EventStreamer::Unregister(Stream* stream) {
  absl::MutexLock lock(&mu_);
  parked_.erase(stream);
  auto it = streams_.find(stream);
  UB_CHECK(it != streams_.end());
  StreamPtr owned = std::move(it->second);
  streams_.erase(it);
  auto owner = stream_callers_.find(stream);
  UB_CHECK(owner != stream_callers_.end());
  if (--per_caller_[owner->second] == 0) per_caller_.erase(owner->second);
  stream_callers_.erase(owner);
  return owned;
}

void EventStreamer::Post(std::function<void()> task) {
  boost::asio::post(*pool_, std::move(task));
}

void EventStreamer::Recheck(const auth::Authenticator& auth) {
  const uint64_t generation = auth.generation();
  std::vector<StreamPtr> streams;
  {
    absl::MutexLock lock(&mu_);
    recheck_auth_ = &auth;
    rechecked_generation_ = std::max(rechecked_generation_, generation);
    streams.reserve(streams_.size());
    for (const auto& entry : streams_) streams.push_back(entry.second);
  }
  // Each stream under its own lock, none under the streamer's.
  for (const StreamPtr& stream : streams) stream->Recheck(auth);
}

size_t EventStreamer::stream_count() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

int EventStreamer::stream_count(const std::string& caller) const {
  absl::MutexLock lock(&mu_);
  auto it = per_caller_.find(caller);
  return it == per_caller_.end() ? 0 : it->second;
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
