// EventFilter: which events one Subscribe stream delivers — the subscriber's
// v1::EventFilter intersected with the caller's scope.
//
// Create() validates the request against the caller: a bucket or key prefix
// outside the caller's scope, or a caller whose uploads it may not read
// (auth::MayRead), is PermissionDenied; an unknown event type, or a list or
// value over its bound (common/request_limits.h), is InvalidArgument; all
// name the field (`filter.buckets[1]: ...`). Repeated entries are dropped.
// Only events about uploads the caller may read match, whatever the filter. Matches()
// is then a pure function of the event. The filter copies what it needs from
// the caller, so it does not reference the Identity. Immutable; any thread.
#ifndef UPLOADBROKER_STREAM_EVENT_FILTER_H_
#define UPLOADBROKER_STREAM_EVENT_FILTER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/identity.h"
#include "stream/event_view.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::stream {

class EventFilter {
 public:
  static absl::StatusOr<EventFilter> Create(const v1::EventFilter& filter,
                                            const auth::Identity& caller);

  // True when the event lies in the caller's scope and matches every
  // non-empty criterion: any bucket, any key prefix, every metadata entry,
  // any caller, any type.
  bool Matches(const EventView& event) const;
  bool Matches(const v1::Event& event) const { return Matches(EventView::Of(event)); }

 private:
  EventFilter() = default;

  // The caller's scope, and whose uploads it may read (empty: anyone's).
  std::vector<std::string> scope_buckets_;
  std::vector<std::string> scope_prefixes_;  // empty: any key
  std::vector<std::string> readable_;
  // The subscriber's criteria (empty: any).
  std::vector<std::string> buckets_;
  std::vector<std::string> key_prefixes_;
  std::map<std::string, std::string> metadata_;
  std::vector<std::string> callers_;
  std::vector<v1::EventType> types_;
};

// The upload an event is about (empty for an event without a payload), and
// the object key it names: the key OSS stored when known, else the intent's.
const v1::Upload& UploadOf(const v1::Event& event);
const std::string& ObjectKeyOf(const v1::Upload& upload);

}  // namespace uploadbroker::stream

#endif  // UPLOADBROKER_STREAM_EVENT_FILTER_H_
