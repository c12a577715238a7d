#include "issue/validate.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace uploadbroker::issue {

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      n = 1; cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      n = 2; cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3; cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4; cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

absl::Status ValidateKey(absl::string_view field, absl::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  if (key.size() > 1023) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": longer than 1023 bytes"));
  }
  if (key[0] == '/' || key[0] == '\\') {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not start with '/' or '\\'"));
  }
  if (!IsValidUtf8(key)) return absl::InvalidArgumentError(absl::StrCat(field, ": not valid UTF-8"));
  for (unsigned char c : key) {
    if (c < 0x20 || c == 0x7F) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": contains a control character"));
    }
  }
  return absl::OkStatus();
}

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
  for (size_t i = 0; i < requested.size(); ++i) {
    UB_RETURN_IF_ERROR(ValidateContentType(absl::StrCat("content_types[", i, "]"), requested[i]));
    if (!caller.scope.content_types.empty() &&
        std::find(caller.scope.content_types.begin(), caller.scope.content_types.end(), requested[i]) ==
            caller.scope.content_types.end()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "content_types[", i, "]: '", requested[i], "' is not allowed for caller '", caller.name, "'"));
    }
  }
  *out = requested;
  return absl::OkStatus();
}

absl::Status ValidateMetadata(const google::protobuf::Map<std::string, std::string>& md) {
  if (md.size() > 32) return absl::InvalidArgumentError("metadata: more than 32 entries");
  for (const auto& [k, v] : md) {
    bool ok = !k.empty() && k.size() <= 128;
    for (char c : k) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.');
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata: key '", k, "' must be 1-128 characters of [A-Za-z0-9_.-]"));
    }
    if (v.size() > 1024 || !IsValidUtf8(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata[", k, "]: value must be at most 1024 bytes of UTF-8"));
    }
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::issue
