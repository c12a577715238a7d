#include "stream/event_batch.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace uploadbroker::stream {
namespace {

// Protobuf tags (field number << 3 | wire type 2, length-delimited) of
// SubscribeResponse.event (1) and SubscribeResponse.events (2).
constexpr uint8_t kEventTag = (1 << 3) | 2;
constexpr uint8_t kEventsTag = (2 << 3) | 2;
constexpr size_t kMaxVarint = 10;

// Writes `value` as a base-128 varint at `out`; returns the bytes written.
size_t PutVarint(uint64_t value, uint8_t* out) {
  size_t n = 0;
  while (value >= 0x80) {
    out[n++] = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  out[n++] = static_cast<uint8_t>(value);
  return n;
}

size_t VarintSize(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

void DeleteString(void* s) { delete static_cast<std::string*>(s); }

}  // namespace

absl::StatusOr<std::shared_ptr<const EventBatch>> EventBatch::Parse(
    ledger::EventRecords records) {
  std::shared_ptr<EventBatch> batch(new EventBatch());
  if (records.entries.empty()) return batch;
  // One slice owns the whole buffer; each record is a sub-slice of it.
  auto* data = new std::string(std::move(records.data));
  batch->buffer_ = grpc::Slice(data->data(), data->size(), &DeleteString, data);
  const grpc::Slice& all = batch->buffer_;
  batch->views_.reserve(records.entries.size());
  batch->records_.reserve(records.entries.size());
  for (const ledger::EventRecords::Entry& entry : records.entries) {
    absl::StatusOr<EventView> view =
        EventView::Parse(absl::string_view(data->data() + entry.offset, entry.size));
    if (!view.ok() || view->cursor() != entry.cursor) {
      return absl::DataLossError(
          absl::StrCat("stored event at cursor ", entry.cursor, " is corrupt"));
    }
    batch->views_.push_back(*view);
    batch->records_.push_back(all.sub(entry.offset, entry.offset + entry.size));
    batch->record_bytes_ += entry.size;
  }
  return batch;
}

std::shared_ptr<const EventBatch> EventBatch::Empty() {
  static const auto* const empty = new std::shared_ptr<const EventBatch>(new EventBatch());
  return *empty;
}

void SingleEventMessage(const grpc::Slice& record, grpc::ByteBuffer& out) {
  uint8_t header[1 + kMaxVarint];
  header[0] = kEventTag;
  const size_t n = 1 + PutVarint(record.size(), header + 1);
  // A header this small is stored inline in the slice (no allocation); the
  // record is shared with every other message carrying it.
  const grpc::Slice slices[2] = {grpc::Slice(header, n), record};
  grpc::ByteBuffer message(slices, 2);
  out.Swap(&message);
}

size_t MultiEventMessage::SizeWith(const grpc::Slice& record) const {
  return size_ + 1 + VarintSize(record.size()) + record.size();
}

void MultiEventMessage::Add(const grpc::Slice& record) {
  size_ = SizeWith(record);
  records_.push_back(record);
}

void MultiEventMessage::TakeInto(grpc::ByteBuffer& out) {
  // One contiguous buffer: a few hundred small slices would cost the
  // transport more than this copy.
  grpc::Slice slice(size_);
  uint8_t* p = const_cast<uint8_t*>(slice.begin());
  for (const grpc::Slice& record : records_) {
    *p++ = kEventsTag;
    p += PutVarint(record.size(), p);
    std::memcpy(p, record.begin(), record.size());
    p += record.size();
  }
  records_.clear();
  size_ = 0;
  grpc::ByteBuffer message(&slice, 1);
  out.Swap(&message);
}

}  // namespace uploadbroker::stream
