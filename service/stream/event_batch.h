// EventBatch: events read from the log once and shared by every stream that
// delivers them, and the SubscribeResponse messages built from them.
//
// A batch keeps each event's stored record (the serialized Event, which is
// what goes on the wire) and a view of the fields the streams' filters read
// (event_view.h), so events are never parsed into messages here. Streams never re-serialize an event: a message is the
// record bytes plus a few bytes of protobuf framing, and the record bytes
// are reference-counted slices of the one buffer the batch was read into.
//
// Immutable after Parse(); any thread. A message built from a batch keeps
// the batch's buffer alive by itself (slice references), not the batch.
#ifndef UPLOADBROKER_STREAM_EVENT_BATCH_H_
#define UPLOADBROKER_STREAM_EVENT_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "ledger/ledger.h"
#include "stream/event_view.h"

namespace uploadbroker::stream {

class EventBatch {
 public:
  // Reads every record's view. DataLoss names the cursor of a corrupt
  // record (or one whose cursor is not its row's).
  static absl::StatusOr<std::shared_ptr<const EventBatch>> Parse(
      ledger::EventRecords records);
  static std::shared_ptr<const EventBatch> Empty();

  EventBatch(const EventBatch&) = delete;
  EventBatch& operator=(const EventBatch&) = delete;

  size_t size() const { return views_.size(); }
  bool empty() const { return views_.empty(); }
  // Event `i` (0 <= i < size()) as filters see it, valid as long as the batch.
  const EventView& view(size_t i) const { return views_[i]; }
  // Its stored record: the Event in wire format.
  const grpc::Slice& record(size_t i) const { return records_[i]; }
  uint64_t first_cursor() const { return views_.front().cursor(); }
  uint64_t last_cursor() const { return views_.back().cursor(); }
  // Bytes of record data held.
  size_t record_bytes() const { return record_bytes_; }

 private:
  EventBatch() = default;

  grpc::Slice buffer_;            // every record, back to back
  std::vector<EventView> views_;  // into buffer_
  std::vector<grpc::Slice> records_;
  size_t record_bytes_ = 0;
};

// Limits of SubscribeRequest.max_events_per_message (larger values are
// capped) and of a message with several events (a single larger event is
// still sent, alone).
inline constexpr uint32_t kMaxEventsPerMessage = 1000;
inline constexpr size_t kMaxMessageBytes = 1 << 20;

// Sets `out` (grpc::ByteBuffer has no move assignment, and a copy costs an
// allocation) to the wire form of SubscribeResponse{event: record}.
void SingleEventMessage(const grpc::Slice& record, grpc::ByteBuffer& out);

// Builds SubscribeResponse{events: [...]} from records added in cursor order.
class MultiEventMessage {
 public:
  // Bytes the message would take with `record` added.
  size_t SizeWith(const grpc::Slice& record) const;
  void Add(const grpc::Slice& record);
  size_t count() const { return records_.size(); }
  // Sets `out` to the message; leaves the builder empty.
  void TakeInto(grpc::ByteBuffer& out);

 private:
  std::vector<grpc::Slice> records_;
  size_t size_ = 0;
};

}  // namespace uploadbroker::stream

#endif  // UPLOADBROKER_STREAM_EVENT_BATCH_H_
