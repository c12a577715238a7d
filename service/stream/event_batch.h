// EventBatch: events read from the log once and shared by every stream that
// delivers them, and the SubscribeResponse messages built from them.
//
// A batch keeps each event twice: parsed (arena-allocated, for the streams'
// filters) and as its stored record (the serialized Event, which is what
// goes on the wire). Streams never re-serialize an event: a message is the
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
#include "google/protobuf/arena.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "ledger/ledger.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::stream {

class EventBatch {
 public:
  // Parses every record. DataLoss names the cursor of a corrupt record.
  static absl::StatusOr<std::shared_ptr<const EventBatch>> Parse(
      ledger::EventRecords records);
  static std::shared_ptr<const EventBatch> Empty();

  EventBatch(const EventBatch&) = delete;
  EventBatch& operator=(const EventBatch&) = delete;

  size_t size() const { return events_.size(); }
  bool empty() const { return events_.empty(); }
  // Parsed event `i` (0 <= i < size()), valid as long as the batch.
  const v1::Event& event(size_t i) const { return *events_[i]; }
  // Its stored record: the Event in wire format.
  const grpc::Slice& record(size_t i) const { return records_[i]; }
  uint64_t first_cursor() const { return events_.front()->cursor(); }
  uint64_t last_cursor() const { return events_.back()->cursor(); }
  // Bytes of record data held.
  size_t record_bytes() const { return record_bytes_; }

 private:
  EventBatch() = default;

  google::protobuf::Arena arena_;
  std::vector<const v1::Event*> events_;  // on arena_
  std::vector<grpc::Slice> records_;
  size_t record_bytes_ = 0;
};

// Limits of SubscribeRequest.max_events_per_message (larger values are
// capped) and of a message with several events (a single larger event is
// still sent, alone).
inline constexpr uint32_t kMaxEventsPerMessage = 1000;
inline constexpr size_t kMaxMessageBytes = 1 << 20;

// The wire form of SubscribeResponse{event: record} (one event per message).
grpc::ByteBuffer SingleEventMessage(const grpc::Slice& record);

// Builds SubscribeResponse{events: [...]} from records added in cursor order.
class MultiEventMessage {
 public:
  // Bytes the message would take with `record` added.
  size_t SizeWith(const grpc::Slice& record) const;
  void Add(const grpc::Slice& record);
  size_t count() const { return records_.size(); }
  // The message; leaves the builder empty.
  grpc::ByteBuffer Take();

 private:
  std::vector<grpc::Slice> records_;
  size_t size_ = 0;
};

}  // namespace uploadbroker::stream

#endif  // UPLOADBROKER_STREAM_EVENT_BATCH_H_
