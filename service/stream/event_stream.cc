#include "stream/event_stream.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/grpc_status.h"

namespace uploadbroker::stream {

grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "server is shutting down; resume after the last cursor received");
}

absl::Status OutOfRange(absl::string_view what, uint64_t after, uint64_t oldest) {
  return absl::OutOfRangeError(absl::StrCat(what, "cursor ", after,
                                            " is older than retention; oldest available is ",
                                            oldest));
}

EventStreamer::Stream::Stream(EventStreamer& streamer, grpc::CallbackServerContext* ctx,
                              const v1::SubscribeRequest& request, auth::Principal caller,
                              EventFilter filter)
    : streamer_(streamer),
      ctx_(ctx),
      start_(request.start()),
      after_cursor_(request.after_cursor()),
      max_per_message_(std::clamp<uint32_t>(request.max_events_per_message(), 1,
                                            kMaxEventsPerMessage)),
      requested_(request.filter()),
      caller_(std::move(caller)),
      filter_(std::move(filter)) {}

void EventStreamer::Stream::Init() {
  absl::StatusOr<uint64_t> start = ResolveStart();
  if (start.ok()) streamer_.OnCommit(last_at_start_);
  absl::MutexLock lock(&mu_);
  fetching_ = false;
  if (finished_) return;
  if (!start.ok()) {
    FinishLocked(common::ToGrpcStatus(start.status()));
    return;
  }
  cursor_ = *start;
  started_ = true;
  ctx_->AddInitialMetadata(kStartCursorMetadata, std::to_string(cursor_));
  StartSendInitialMetadata();
  AdvanceLocked();
}

void EventStreamer::Stream::Deliver(uint64_t after, const ReadResult& result, uint64_t seen) {
  absl::MutexLock lock(&mu_);
  fetching_ = false;
  if (finished_) return;
  if (!result.status.ok()) {
    FinishLocked(common::ToGrpcStatus(result.status));
    return;
  }
  UB_CHECK(after == cursor_);
  tolerate_gap_ = false;  // only the very first read of EARLIEST
  TakeLocked(result.batch, seen);
  AdvanceLocked();
}

void EventStreamer::Stream::End() {
  absl::MutexLock lock(&mu_);
  if (!end_status_.has_value()) end_status_ = ShuttingDown();
  if (!writing_) FinishLocked(*end_status_);
}

void EventStreamer::Stream::Recheck(const auth::Authenticator& auth) {
  auth::Principal held;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || end_status_.has_value()) return;
    held = caller_;
  }
  // No lock held: the authenticator takes its own (reader) lock.
  uint64_t checked = 0;
  absl::StatusOr<auth::Principal> now = auth.Recheck(held, &checked);
  absl::StatusOr<EventFilter> filter = absl::UnknownError("unset");
  absl::Status verdict = now.status();
  if (now.ok()) {
    filter = EventFilter::Create(requested_, **now);
    if (!filter.ok()) {
      verdict = absl::PermissionDeniedError(absl::StrCat(
          "the caller's scope or read_callers, changed by a configuration reload, no longer "
          "cover this stream's filter: ", filter.status().message()));
    }
  }
  absl::MutexLock lock(&mu_);
  if (finished_ || end_status_.has_value()) return;
  // A concurrent Recheck against a newer snapshot already ran.
  if (caller_.generation > checked) return;
  if (!verdict.ok()) {
    end_status_ = common::ToGrpcStatus(verdict);
    if (!writing_) FinishLocked(*end_status_);
    return;
  }
  caller_ = *std::move(now);
  filter_ = *std::move(filter);
}

// TryCancel runs the reactions on other threads (they are not inlineable),
// and OnDone cannot run before Finish, so holding mu_ here is safe.
void EventStreamer::Stream::Cancel() {
  absl::MutexLock lock(&mu_);
  if (!finished_) ctx_->TryCancel();
}

void EventStreamer::Stream::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  message_.Clear();  // an idle stream keeps no message
  if (!ok) {
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed: client went away"));
    return;
  }
  AdvanceLocked();
}

void EventStreamer::Stream::OnCancel() {
  absl::MutexLock lock(&mu_);
  FinishLocked(grpc::Status::CANCELLED);
}

void EventStreamer::Stream::OnDone() {
  // Keeps this object alive until OnDone returns; pool tasks may still hold
  // references, but they see finished_ and stop.
  StreamPtr self = streamer_.Unregister(this);
}

absl::StatusOr<uint64_t> EventStreamer::Stream::ResolveStart() {
  absl::StatusOr<uint64_t> last = streamer_.ledger_.LastCursor();
  if (!last.ok()) return last.status();
  last_at_start_ = *last;
  if (start_ == v1::START_POSITION_LATEST || start_ == v1::START_POSITION_UNSPECIFIED) {
    return *last;
  }
  absl::StatusOr<uint64_t> first = streamer_.ledger_.FirstCursor();
  if (!first.ok()) return first.status();
  if (start_ == v1::START_POSITION_EARLIEST) {
    // Whatever retention removes before the first read is skipped, not an
    // error: EARLIEST means the oldest event still retained.
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

void EventStreamer::Stream::AdvanceLocked() {
  for (;;) {
    if (finished_ || !started_) return;
    if (!writing_) {
      if (end_status_.has_value()) {
        FinishLocked(*end_status_);
        return;
      }
      WriteNextLocked();
    }
    // Room for a batch: read ahead while the current one is written.
    if (fetching_ || next_batch_ != nullptr) return;
    fetching_ = true;
    BatchPtr kept = streamer_.Fetch(shared_from_this(), cursor_, seen_, tolerate_gap_);
    if (kept == nullptr) return;  // Deliver follows (or the stream is parked)
    fetching_ = false;
    TakeLocked(std::move(kept), seen_);
  }
}

void EventStreamer::Stream::TakeLocked(BatchPtr batch, uint64_t seen) {
  if (batch->empty()) {
    seen_ = seen;  // read again only once the log grows past `seen`
    return;
  }
  cursor_ = batch->last_cursor();
  seen_ = 0;
  if (batch_ == nullptr) {
    batch_ = std::move(batch);
    next_ = 0;
  } else {
    UB_CHECK(next_batch_ == nullptr);
    next_batch_ = std::move(batch);
  }
}

void EventStreamer::Stream::DropWrittenLocked() {
  while (batch_ != nullptr && next_ >= batch_->size()) {
    batch_ = std::move(next_batch_);
    next_batch_ = nullptr;
    next_ = 0;
  }
}

void EventStreamer::Stream::WriteNextLocked() {
  if (max_per_message_ <= 1) {
    for (DropWrittenLocked(); batch_ != nullptr; DropWrittenLocked()) {
      const size_t i = next_++;
      if (!filter_.Matches(batch_->view(i))) continue;
      SingleEventMessage(batch_->record(i), message_);
      writing_ = true;
      StartWrite(&message_);
      DropWrittenLocked();  // the message holds its own reference to the bytes
      return;
    }
    return;
  }
  MultiEventMessage message;
  for (DropWrittenLocked(); batch_ != nullptr && message.count() < max_per_message_;
       DropWrittenLocked()) {
    const grpc::Slice& record = batch_->record(next_);
    if (!filter_.Matches(batch_->view(next_))) {
      ++next_;
      continue;
    }
    if (message.count() > 0 && message.SizeWith(record) > kMaxMessageBytes) break;
    message.Add(record);
    ++next_;
  }
  DropWrittenLocked();
  if (message.count() == 0) return;
  message.TakeInto(message_);
  writing_ = true;
  StartWrite(&message_);
}

void EventStreamer::Stream::FinishLocked(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  batch_.reset();
  next_batch_.reset();
  Finish(status);
}

}  // namespace uploadbroker::stream
