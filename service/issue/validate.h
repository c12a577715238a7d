// Field checks for issuance requests. Each returns InvalidArgument naming the
// field, or PermissionDenied when the value is well-formed but outside the
// caller's scope. Pure functions.
#ifndef UPLOADBROKER_ISSUE_VALIDATE_H_
#define UPLOADBROKER_ISSUE_VALIDATE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "auth/identity.h"
#include "google/protobuf/map.h"

namespace uploadbroker::issue {

// "type/subtype" with token characters, optional parameters; no control
// characters.
absl::Status ValidateContentType(absl::string_view field, absl::string_view value);

// Resolves the accepted content types: at most common::kMaxContentTypes,
// every requested one allowed; repeats are dropped (first kept); none
// requested means the caller's list.
absl::Status ResolveContentTypes(const auth::Identity& caller,
                                 const std::vector<std::string>& requested,
                                 std::vector<std::string>* out);

// At most 32 entries, keys 1..128 bytes of [A-Za-z0-9_.-], values <= 1024
// bytes of UTF-8 (common/request_limits.h).
absl::Status ValidateMetadata(const google::protobuf::Map<std::string, std::string>& md);

}  // namespace uploadbroker::issue

#endif  // UPLOADBROKER_ISSUE_VALIDATE_H_
