#include "issue/validate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/request_limits.h"
#include "common/status_macros.h"
#include "common/utf8.h"

namespace uploadbroker::issue {

absl::Status ValidateContentType(absl::string_view field, absl::string_view value) {
  size_t slash = value.find('/');
  bool ok = !value.empty() && value.size() <= 255 && slash != absl::string_view::npos &&
            slash > 0 && slash + 1 < value.size();
  for (unsigned char c : value) ok = ok && c >= 0x20 && c < 0x7F && c != '"';
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": '", value, "' is not a media type like image/png"));
  }
  return absl::OkStatus();
}

absl::Status ResolveContentTypes(const auth::Identity& caller,
                                 const std::vector<std::string>& requested,
                                 std::vector<std::string>* out) {
  if (requested.empty()) {
    *out = caller.scope.content_types;
    return absl::OkStatus();
  }
  UB_RETURN_IF_ERROR(common::CheckCount("content_types", requested.size(), common::kMaxContentTypes));
  for (size_t i = 0; i < requested.size(); ++i) {
    UB_RETURN_IF_ERROR(ValidateContentType(absl::StrCat("content_types[", i, "]"), requested[i]));
    if (!caller.scope.content_types.empty() &&
        std::find(caller.scope.content_types.begin(), caller.scope.content_types.end(), requested[i]) ==
            caller.scope.content_types.end()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "content_types[", i, "]: '", requested[i], "' is not allowed for caller '", caller.name, "'"));
    }
  }
  // A repeated type would only lengthen the policy's "in" list.
  *out = requested;
  common::Deduplicate(*out);
  return absl::OkStatus();
}

absl::Status ValidateMetadata(const google::protobuf::Map<std::string, std::string>& md) {
  UB_RETURN_IF_ERROR(common::CheckCount("metadata", md.size(), common::kMaxMetadataEntries));
  for (const auto& [k, v] : md) {
    bool ok = !k.empty() && k.size() <= common::kMaxMetadataKeyBytes;
    for (char c : k) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.');
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata: key '", k, "' must be 1-128 characters of [A-Za-z0-9_.-]"));
    }
    if (v.size() > common::kMaxMetadataValueBytes || !common::IsValidUtf8(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata[", k, "]: value must be at most 1024 bytes of UTF-8"));
    }
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::issue
