#include "common/oss_names.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/utf8.h"

namespace uploadbroker::common {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

bool IsBidiControl(uint32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

bool IsValidBucketName(absl::string_view name) {
  if (name.size() < 3 || name.size() > 63 || name.front() == '-' || name.back() == '-') {
    return false;
  }
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) return false;
  }
  return true;
}

absl::Status CheckObjectKey(absl::string_view field, absl::string_view key) {
  if (key.empty()) return Invalid(field, "must not be empty");
  if (key.size() > kMaxObjectKeyBytes) return Invalid(field, "longer than 1023 bytes");
  if (key[0] == '/' || key[0] == '\\') return Invalid(field, "must not start with '/' or '\\'");
  size_t pos = 0;
  uint32_t cp;
  while (pos < key.size()) {
    if (!NextCodePoint(key, &pos, &cp)) return Invalid(field, "not valid UTF-8");
    if (IsControl(cp)) {
      return Invalid(field, absl::StrFormat("contains a control character (U+%04X)", cp));
    }
    if (IsBidiControl(cp)) {
      return Invalid(field, absl::StrFormat(
                                "contains a bidirectional control character (U+%04X), which makes "
                                "a key display differently from what it is",
                                cp));
    }
  }
  std::vector<absl::string_view> segments = absl::StrSplit(key, '/');
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool last = i + 1 == segments.size();
    if (segments[i].empty() && !last) return Invalid(field, "contains '//' (an empty path segment)");
    if (segments[i] == "." || segments[i] == "..") {
      return Invalid(field, absl::StrCat("contains a '", segments[i], "' path segment"));
    }
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::common
