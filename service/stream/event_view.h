// EventView: what a Subscribe filter looks at in an event (type, caller,
// bucket, keys, metadata), read straight from its stored record without
// building a v1::Event, or taken from a parsed one.
//
// Parse() reads the protobuf wire format of v1::Event and keeps views into
// the record, so the record must outlive the view. Records are canonical
// serializations, as the ledger writes them (SerializeToString: each
// singular field at most once); a record that repeats the payload, its
// upload or its completion is treated as corrupt rather than merged.
// Metadata is looked up on demand. Immutable; any thread.
#ifndef UPLOADBROKER_STREAM_EVENT_VIEW_H_
#define UPLOADBROKER_STREAM_EVENT_VIEW_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::stream {

class EventView {
 public:
  // From a stored record; InvalidArgument if it is not a well-formed Event.
  static absl::StatusOr<EventView> Parse(absl::string_view record);
  // From a parsed event, which must outlive the view.
  static EventView Of(const v1::Event& event);

  uint64_t cursor() const { return cursor_; }
  // The type as stored (possibly a value this build does not know).
  int type() const { return type_; }
  // Of the upload the event is about (empty without a payload).
  absl::string_view caller() const { return caller_; }
  absl::string_view bucket() const { return bucket_; }
  // The key OSS stored when known, else the intent's key (ObjectKeyOf).
  absl::string_view object_key() const {
    return completion_key_.empty() ? key_ : completion_key_;
  }
  // True when the upload's metadata has `key` with exactly `value`.
  bool MetadataEquals(absl::string_view key, absl::string_view value) const;

 private:
  EventView() = default;

  uint64_t cursor_ = 0;
  int type_ = 0;
  absl::string_view caller_, bucket_, key_, completion_key_;
  // Exactly one source of metadata: the record's Upload bytes (Parse) or the
  // parsed event's map (Of).
  absl::string_view upload_record_;
  const google::protobuf::Map<std::string, std::string>* metadata_ = nullptr;
};

}  // namespace uploadbroker::stream

#endif  // UPLOADBROKER_STREAM_EVENT_VIEW_H_
