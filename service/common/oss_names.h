// OSS naming rules the broker enforces on names it signs or is configured
// with: bucket names (OSS's own rule) and object keys or key prefixes (OSS's
// rule plus what keeps a key safe for the systems that later read it). Pure
// functions, thread-safe.
#ifndef UPLOADBROKER_COMMON_OSS_NAMES_H_
#define UPLOADBROKER_COMMON_OSS_NAMES_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::common {

// OSS's limits on an object: its key's length in bytes, what one PutObject
// or PostObject carries (5 GiB), and the largest object, which only a
// multipart upload reaches (10,000 parts of at most 5 GiB each).
inline constexpr size_t kMaxObjectKeyBytes = 1023;
inline constexpr int64_t kMaxSingleUploadSize = 5LL << 30;  // 5 GiB
inline constexpr int64_t kMaxObjectSize = 10000 * kMaxSingleUploadSize;

// OSS bucket naming: 3-63 characters of lowercase letters, digits and
// hyphens, starting and ending with a letter or a digit.
bool IsValidBucketName(absl::string_view name);

// An object key, or a key prefix, the broker may sign or be configured with:
// 1..1023 bytes of UTF-8; not starting with '/' or '\'; no "//"; no "." or
// ".." path segment (a prefix's unfinished last segment counts as one), also
// none disguised as one for a less careful reader: '\' read as '/',
// "%2e"/"%2f"/"%5c" decoded (any case), U+FF0E, U+FE52, U+2024, U+2025
// ("..") read as dots and U+FF0F, U+FF3C, U+FE68 as slashes; no
// control character (C0, DEL, C1); no bidirectional embedding, override or
// isolate character (U+202A-U+202E, U+2066-U+2069), which make a key display
// differently from what it is. OK, or InvalidArgument "<field>: <reason>".
absl::Status CheckObjectKey(absl::string_view field, absl::string_view key);

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_OSS_NAMES_H_
