#include "common/oss_names.h"

#include <string>
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

// Whether the two bytes after '%' encode `c` (hex, either case).
bool PercentEncodes(absl::string_view key, size_t pos, char c) {
  if (pos + 2 >= key.size() || key[pos] != '%') return false;
  const std::string hex = absl::StrFormat("%02x", static_cast<unsigned char>(c));
  return absl::ascii_tolower(key[pos + 1]) == hex[0] && absl::ascii_tolower(key[pos + 2]) == hex[1];
}

// The key as a less careful reader may take it: '\' as '/', %2e/%2f/%5c
// decoded (either case), and the Unicode compatibility forms that NFKC
// folds to '.' or '/' (U+FF0E, U+FE52, U+2024, U+2025 "..", U+FF0F, U+FF3C,
// U+FE68) replaced. Requires valid UTF-8.
std::string AsLooselyRead(absl::string_view key) {
  std::string out;
  out.reserve(key.size());
  size_t pos = 0;
  while (pos < key.size()) {
    if (key[pos] == '\\') {
      out += '/';
      ++pos;
      continue;
    }
    if (PercentEncodes(key, pos, '.')) {
      out += '.';
      pos += 3;
      continue;
    }
    if (PercentEncodes(key, pos, '/') || PercentEncodes(key, pos, '\\')) {
      out += '/';
      pos += 3;
      continue;
    }
    const size_t start = pos;
    uint32_t cp = 0;
    if (!NextCodePoint(key, &pos, &cp)) return out;  // checked by the caller
    switch (cp) {
      case 0xFF0E: case 0xFE52: case 0x2024: out += '.'; break;
      case 0x2025: out += ".."; break;
      case 0xFF0F: case 0xFF3C: case 0xFE68: out += '/'; break;
      default: out.append(key.data() + start, pos - start);
    }
  }
  return out;
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
  // The same segments disguised: alpha/..\\..\\x, %2e%2e, full-width dots.
  const std::string loose = AsLooselyRead(key);
  for (absl::string_view segment : absl::StrSplit(loose, '/')) {
    if (segment == "." || segment == "..") {
      return Invalid(field, absl::StrCat(
                                "contains a path segment that reads as '", segment,
                                "' once '\\' is taken for '/', a percent-encoded '.', '/' or '\\' "
                                "is decoded, or a Unicode look-alike of '.' or '/' is normalized"));
    }
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::common
