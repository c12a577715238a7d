// Bounds on the repeated and variable-size fields of API requests, and the
// helpers that enforce them, so every RPC refuses an oversized request the
// same way: InvalidArgument "<field>: <count> entries, at most <cap>".
//
// Together with the gRPC message limit (config `limits.grpc_max_receive_bytes`)
// these bound what one request can make the broker sign, store and send back:
// an intent, and so an event, stays far below one Subscribe message
// (stream::kMaxMessageBytes). Pure functions; any thread.
#ifndef UPLOADBROKER_COMMON_REQUEST_LIMITS_H_
#define UPLOADBROKER_COMMON_REQUEST_LIMITS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::common {

// Content types one authorization may accept (each at most 255 bytes).
inline constexpr size_t kMaxContentTypes = 32;
// Metadata entries of an intent or a Subscribe filter, and their sizes.
inline constexpr size_t kMaxMetadataEntries = 32;
inline constexpr size_t kMaxMetadataKeyBytes = 128;
inline constexpr size_t kMaxMetadataValueBytes = 1024;
// Entries of each list in a Subscribe filter and of ListUploads.buckets.
inline constexpr size_t kMaxFilterEntries = 64;
// One key prefix or caller name in a filter or a query.
inline constexpr size_t kMaxFilterValueBytes = 1024;

// InvalidArgument naming `field`, `cap` and `count` when count > cap.
absl::Status CheckCount(absl::string_view field, size_t count, size_t cap);

// InvalidArgument naming `field` when `value` is longer than `cap` bytes.
absl::Status CheckLength(absl::string_view field, absl::string_view value, size_t cap);

// Removes repeated entries, keeping the first of each in order.
template <typename T>
void Deduplicate(std::vector<T>& values) {
  std::vector<T> kept;
  kept.reserve(values.size());
  for (T& v : values) {
    bool seen = false;
    for (const T& k : kept) seen = seen || k == v;
    if (!seen) kept.push_back(std::move(v));
  }
  values = std::move(kept);
}

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_REQUEST_LIMITS_H_
