#include "stream/event_view.h"

#include "stream/event_filter.h"

namespace uploadbroker::stream {
namespace {

// Field numbers (upload_broker.proto) of what a filter reads.
enum : uint32_t {
  kEventCursor = 1,
  kEventType = 2,
  kEventUploadCompleted = 4,
  kEventUploadExpired = 5,
  kPayloadUpload = 1,  // UploadCompleted.upload, UploadExpired.upload
  kUploadCaller = 3,
  kUploadBucket = 4,
  kUploadKey = 5,
  kUploadMetadata = 10,
  kUploadCompletion = 15,
  kCompletionKey = 1,
  kEntryKey = 1,  // map entry
  kEntryValue = 2,
};

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

// Reads one message's fields in order. Every method returns false on
// malformed input (truncated, overlong varint, unsupported wire type).
class WireReader {
 public:
  explicit WireReader(absl::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ == end_; }

  bool Varint(uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t b = *p_++;
      value |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  bool Tag(uint32_t& field, uint32_t& wire_type) {
    uint64_t tag;
    if (!Varint(tag) || tag > UINT32_MAX || (tag >> 3) == 0) return false;
    field = static_cast<uint32_t>(tag >> 3);
    wire_type = static_cast<uint32_t>(tag & 7);
    return true;
  }

  bool Bytes(absl::string_view& out) {
    uint64_t size;
    if (!Varint(size) || size > static_cast<uint64_t>(end_ - p_)) return false;
    out = absl::string_view(reinterpret_cast<const char*>(p_), size);
    p_ += size;
    return true;
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
        return Advance(8);
      case kFixed32:
        return Advance(4);
      default:  // groups are not used by this API
        return false;
    }
  }

 private:
  bool Advance(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    p_ += n;
    return true;
  }

  const uint8_t* p_;
  const uint8_t* const end_;
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
