#include "stream/event_batch.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::stream {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

// Tags of SubscribeResponse.event and SubscribeResponse.events, both
// length-delimited, from the generated field numbers.
const uint32_t kEventTag = WireFormatLite::MakeTag(
    v1::SubscribeResponse::kEventFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
const uint32_t kEventsTag = WireFormatLite::MakeTag(
    v1::SubscribeResponse::kEventsFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
constexpr size_t kMaxFieldHeader = 10;  // two varint32s of at most 5 bytes

// Writes the tag and length that precede a length-delimited field; returns
// the bytes written.
size_t PutFieldHeader(uint32_t tag, size_t length, uint8_t* out) {
  uint8_t* end = CodedOutputStream::WriteTagToArray(tag, out);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(length), end);
  return static_cast<size_t>(end - out);
}

size_t FieldHeaderSize(uint32_t tag, size_t length) {
  return CodedOutputStream::VarintSize32(tag) +
         CodedOutputStream::VarintSize32(static_cast<uint32_t>(length));
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
  uint8_t header[kMaxFieldHeader];
  const size_t n = PutFieldHeader(kEventTag, record.size(), header);
  // A header this small is stored inline in the slice (no allocation); the
  // record is shared with every other message carrying it.
  const grpc::Slice slices[2] = {grpc::Slice(header, n), record};
  grpc::ByteBuffer message(slices, 2);
  out.Swap(&message);
}

size_t MultiEventMessage::SizeWith(const grpc::Slice& record) const {
  return size_ + FieldHeaderSize(kEventsTag, record.size()) + record.size();
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
    p += PutFieldHeader(kEventsTag, record.size(), p);
    std::memcpy(p, record.begin(), record.size());
    p += record.size();
  }
  records_.clear();
  size_ = 0;
  grpc::ByteBuffer message(&slice, 1);
  out.Swap(&message);
}

}  // namespace uploadbroker::stream
