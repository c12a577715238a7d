#include "stream/event_view.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "stream/event_filter.h"

namespace uploadbroker::stream {
namespace {

using google::protobuf::internal::WireFormatLite;

// Field numbers of what a filter reads, from the generated code, so a change
// to the .proto cannot leave this file reading the wrong fields.
enum : uint32_t {
  kEventCursor = v1::Event::kCursorFieldNumber,
  kEventType = v1::Event::kTypeFieldNumber,
  kEventUploadCompleted = v1::Event::kUploadCompletedFieldNumber,
  kEventUploadExpired = v1::Event::kUploadExpiredFieldNumber,
  kPayloadUpload = v1::UploadCompleted::kUploadFieldNumber,
  kUploadCaller = v1::Upload::kCallerFieldNumber,
  kUploadBucket = v1::Upload::kBucketFieldNumber,
  kUploadKey = v1::Upload::kKeyFieldNumber,
  kUploadMetadata = v1::Upload::kMetadataFieldNumber,
  kUploadCompletion = v1::Upload::kCompletionFieldNumber,
  kCompletionKey = v1::Completion::kKeyFieldNumber,
  kEntryKey = 1,  // a map entry's key and value (protobuf's map encoding)
  kEntryValue = 2,
};
static_assert(static_cast<uint32_t>(v1::UploadExpired::kUploadFieldNumber) == kPayloadUpload);

enum WireType : uint32_t {
  kVarint = WireFormatLite::WIRETYPE_VARINT,
  kFixed64 = WireFormatLite::WIRETYPE_FIXED64,
  kBytes = WireFormatLite::WIRETYPE_LENGTH_DELIMITED,
  kFixed32 = WireFormatLite::WIRETYPE_FIXED32,
};

// Walks one message's fields in order over protobuf's own wire decoder
// (CodedInputStream), keeping views into the record instead of building a
// v1::Event: parsing every event for each stream was about 40 % of the
// broker's CPU during replay. Every method returns false on malformed input
// (truncated, overlong varint, unsupported wire type).
class WireReader {
 public:
  explicit WireReader(absl::string_view bytes)
      : data_(bytes.data()),
        size_(static_cast<int>(bytes.size())),
        in_(reinterpret_cast<const uint8_t*>(bytes.data()), size_) {}

  bool done() const { return in_.CurrentPosition() == size_; }

  bool Varint(uint64_t& value) { return in_.ReadVarint64(&value); }

  bool Tag(uint32_t& field, uint32_t& wire_type) {
    const uint32_t tag = in_.ReadTag();
    if (tag == 0 || WireFormatLite::GetTagFieldNumber(tag) == 0) return false;
    field = static_cast<uint32_t>(WireFormatLite::GetTagFieldNumber(tag));
    wire_type = static_cast<uint32_t>(WireFormatLite::GetTagWireType(tag));
    return true;
  }

  bool Bytes(absl::string_view& out) {
    uint32_t size;
    if (!in_.ReadVarint32(&size) || size > static_cast<uint32_t>(size_ - in_.CurrentPosition())) {
      return false;
    }
    out = absl::string_view(data_ + in_.CurrentPosition(), size);
    return in_.Skip(static_cast<int>(size));
  }

  // Reads (and drops) a value of `wire_type`.
  bool Skip(uint32_t wire_type) {
    uint64_t ignored;
    absl::string_view bytes;
    switch (wire_type) {
      case kVarint:
        return Varint(ignored);
      case kBytes:
        return Bytes(bytes);
      case kFixed64:
        return in_.Skip(8);
      case kFixed32:
        return in_.Skip(4);
      default:  // groups are not used by this API
        return false;
    }
  }

 private:
  const char* const data_;
  const int size_;
  google::protobuf::io::CodedInputStream in_;
};

// Reads the one `kBytes` field `want` of a message, or "" if absent.
bool OnlyBytesField(absl::string_view message, uint32_t want, absl::string_view& out) {
  WireReader r(message);
  bool seen = false;
  while (!r.done()) {
    uint32_t field, wt;
    if (!r.Tag(field, wt)) return false;
    if (field == want && wt == kBytes) {
      if (seen || !r.Bytes(out)) return false;
      seen = true;
    } else if (!r.Skip(wt)) {
      return false;
    }
  }
  return true;
}

absl::Status Corrupt() { return absl::InvalidArgumentError("not a well-formed Event record"); }

}  // namespace

absl::StatusOr<EventView> EventView::Parse(absl::string_view record) {
  EventView view;
  absl::string_view payload, upload, completion;
  bool has_payload = false;
  WireReader event(record);
  while (!event.done()) {
    uint32_t field, wt;
    if (!event.Tag(field, wt)) return Corrupt();
    uint64_t value;
    if (field == kEventCursor && wt == kVarint) {
      if (!event.Varint(value)) return Corrupt();
      view.cursor_ = value;
    } else if (field == kEventType && wt == kVarint) {
      if (!event.Varint(value)) return Corrupt();
      view.type_ = static_cast<int>(static_cast<int32_t>(value));
    } else if ((field == kEventUploadCompleted || field == kEventUploadExpired) && wt == kBytes) {
      if (has_payload || !event.Bytes(payload)) return Corrupt();
      has_payload = true;
    } else if (!event.Skip(wt)) {
      return Corrupt();
    }
  }
  if (!has_payload) return view;
  if (!OnlyBytesField(payload, kPayloadUpload, upload)) return Corrupt();
  view.upload_record_ = upload;
  bool has_completion = false;
  WireReader u(upload);
  while (!u.done()) {
    uint32_t field, wt;
    if (!u.Tag(field, wt)) return Corrupt();
    if (wt != kBytes) {
      if (!u.Skip(wt)) return Corrupt();
      continue;
    }
    absl::string_view bytes;
    if (!u.Bytes(bytes)) return Corrupt();
    switch (field) {
      case kUploadCaller:
        view.caller_ = bytes;
        break;
      case kUploadBucket:
        view.bucket_ = bytes;
        break;
      case kUploadKey:
        view.key_ = bytes;
        break;
      case kUploadCompletion:
        if (has_completion) return Corrupt();
        has_completion = true;
        completion = bytes;
        break;
      default:
        break;  // metadata is read on demand
    }
  }
  if (has_completion && !OnlyBytesField(completion, kCompletionKey, view.completion_key_)) {
    return Corrupt();
  }
  return view;
}

EventView EventView::Of(const v1::Event& event) {
  EventView view;
  view.cursor_ = event.cursor();
  view.type_ = event.type();
  const v1::Upload& upload = UploadOf(event);
  view.caller_ = upload.caller();
  view.bucket_ = upload.bucket();
  view.key_ = upload.key();
  view.completion_key_ = upload.completion().key();
  view.metadata_ = &upload.metadata();
  return view;
}

bool EventView::MetadataEquals(absl::string_view key, absl::string_view value) const {
  if (metadata_ != nullptr) {
    auto it = metadata_->find(std::string(key));
    return it != metadata_->end() && it->second == value;
  }
  // Map entries are repeated fields; a later entry for a key replaces an
  // earlier one, as when protobuf parses the map.
  bool found = false;
  absl::string_view found_value;
  WireReader u(upload_record_);
  while (!u.done()) {
    uint32_t field, wt;
    absl::string_view entry;
    if (!u.Tag(field, wt)) return false;
    if (field != kUploadMetadata || wt != kBytes) {
      if (!u.Skip(wt)) return false;
      continue;
    }
    if (!u.Bytes(entry)) return false;
    absl::string_view k, v;
    WireReader e(entry);
    while (!e.done()) {
      uint32_t ef, ewt;
      if (!e.Tag(ef, ewt)) return false;
      if (ef == kEntryKey && ewt == kBytes) {
        if (!e.Bytes(k)) return false;
      } else if (ef == kEntryValue && ewt == kBytes) {
        if (!e.Bytes(v)) return false;
      } else if (!e.Skip(ewt)) {
        return false;
      }
    }
    if (k == key) {
      found = true;
      found_value = v;
    }
  }
  return found && found_value == value;
}

}  // namespace uploadbroker::stream
