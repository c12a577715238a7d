#include "stream/event_filter.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "auth/identity.h"
#include "common/request_limits.h"
#include "common/status_macros.h"

namespace uploadbroker::stream {
namespace {

bool Contains(const std::vector<std::string>& list, absl::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool StartsWithAny(const std::vector<std::string>& prefixes, absl::string_view s) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [s](const std::string& p) { return absl::StartsWith(s, p); });
}

// Every list at most common::kMaxFilterEntries long, each value and
// metadata entry within its size.
absl::Status CheckBounds(const v1::EventFilter& filter) {
  using common::kMaxFilterEntries;
  UB_RETURN_IF_ERROR(common::CheckCount("filter.buckets", filter.buckets_size(), kMaxFilterEntries));
  UB_RETURN_IF_ERROR(
      common::CheckCount("filter.key_prefixes", filter.key_prefixes_size(), kMaxFilterEntries));
  UB_RETURN_IF_ERROR(common::CheckCount("filter.callers", filter.callers_size(), kMaxFilterEntries));
  UB_RETURN_IF_ERROR(common::CheckCount("filter.types", filter.types_size(), kMaxFilterEntries));
  UB_RETURN_IF_ERROR(
      common::CheckCount("filter.metadata", filter.metadata_size(), common::kMaxMetadataEntries));
  for (int i = 0; i < filter.key_prefixes_size(); ++i) {
    UB_RETURN_IF_ERROR(common::CheckLength(absl::StrCat("filter.key_prefixes[", i, "]"),
                                           filter.key_prefixes(i), common::kMaxFilterValueBytes));
  }
  for (int i = 0; i < filter.callers_size(); ++i) {
    UB_RETURN_IF_ERROR(common::CheckLength(absl::StrCat("filter.callers[", i, "]"),
                                           filter.callers(i), common::kMaxFilterValueBytes));
  }
  for (const auto& [k, v] : filter.metadata()) {
    UB_RETURN_IF_ERROR(common::CheckLength(absl::StrCat("filter.metadata key '", k.substr(0, 64), "'"),
                                           k, common::kMaxMetadataKeyBytes));
    UB_RETURN_IF_ERROR(common::CheckLength(absl::StrCat("filter.metadata[", k, "]"), v,
                                           common::kMaxMetadataValueBytes));
  }
  return absl::OkStatus();
}

}  // namespace

const v1::Upload& UploadOf(const v1::Event& event) {
  switch (event.payload_case()) {
    case v1::Event::kUploadCompleted:
      return event.upload_completed().upload();
    case v1::Event::kUploadExpired:
      return event.upload_expired().upload();
    case v1::Event::PAYLOAD_NOT_SET:
      break;
  }
  return v1::Upload::default_instance();
}

const std::string& ObjectKeyOf(const v1::Upload& upload) {
  return upload.completion().key().empty() ? upload.key() : upload.completion().key();
}

absl::StatusOr<EventFilter> EventFilter::Create(const v1::EventFilter& filter,
                                                const auth::Identity& caller) {
  UB_RETURN_IF_ERROR(CheckBounds(filter));
  EventFilter f;
  f.scope_buckets_ = caller.scope.buckets;
  f.scope_prefixes_ = caller.scope.key_prefixes;
  f.readable_ = auth::ReadableCallers(caller);
  for (int i = 0; i < filter.buckets_size(); ++i) {
    if (!auth::CheckBucket(caller, filter.buckets(i)).ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("filter.buckets[", i, "]: caller '", caller.name,
                       "' may not read bucket '", filter.buckets(i), "'"));
    }
    f.buckets_.push_back(filter.buckets(i));
  }
  for (int i = 0; i < filter.key_prefixes_size(); ++i) {
    if (!auth::CheckKey(caller, filter.key_prefixes(i), /*is_prefix=*/true).ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("filter.key_prefixes[", i, "]: '", filter.key_prefixes(i),
                       "' is outside caller '", caller.name, "' allowed prefixes"));
    }
    f.key_prefixes_.push_back(filter.key_prefixes(i));
  }
  f.metadata_.insert(filter.metadata().begin(), filter.metadata().end());
  for (int i = 0; i < filter.callers_size(); ++i) {
    if (!auth::MayRead(caller, filter.callers(i))) {
      return absl::PermissionDeniedError(
          absl::StrCat("filter.callers[", i, "]: caller '", caller.name, "' may not read uploads of '",
                       filter.callers(i), "' (see read_callers)"));
    }
    f.callers_.push_back(filter.callers(i));
  }
  for (int i = 0; i < filter.types_size(); ++i) {
    const int type = filter.types(i);
    if (!v1::EventType_IsValid(type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("filter.types[", i, "]: unknown event type ", type));
    }
    // EVENT_TYPE_UNSPECIFIED in the list means any type.
    if (type == v1::EVENT_TYPE_UNSPECIFIED) {
      f.types_.clear();
      break;
    }
    f.types_.push_back(static_cast<v1::EventType>(type));
  }
  // Repeats change nothing but the cost of every match.
  common::Deduplicate(f.buckets_);
  common::Deduplicate(f.key_prefixes_);
  common::Deduplicate(f.callers_);
  common::Deduplicate(f.types_);
  return f;
}

bool EventFilter::Matches(const EventView& event) const {
  const absl::string_view bucket = event.bucket();
  const absl::string_view key = event.object_key();
  // Scope first: an event outside it is invisible whatever the filter says.
  if (!Contains(scope_buckets_, bucket)) return false;
  if (!scope_prefixes_.empty() && !StartsWithAny(scope_prefixes_, key)) return false;
  if (!readable_.empty() && !Contains(readable_, event.caller())) return false;

  if (!types_.empty() &&
      std::find(types_.begin(), types_.end(), event.type()) == types_.end()) {
    return false;
  }
  if (!buckets_.empty() && !Contains(buckets_, bucket)) return false;
  if (!key_prefixes_.empty() && !StartsWithAny(key_prefixes_, key)) return false;
  if (!callers_.empty() && !Contains(callers_, event.caller())) return false;
  for (const auto& [k, v] : metadata_) {
    if (!event.MetadataEquals(k, v)) return false;
  }
  return true;
}

}  // namespace uploadbroker::stream
