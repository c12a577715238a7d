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

// The key as a path would read it: '\\', %2f, %5c and full-width or
// look-alike slashes as '/'; %2e and full-width or look-alike dots as '.'.
// Whatever decodes, normalizes or serves keys as paths (a web server, a
// sync tool, a download script) may read them so.
std::string AsPath(absl::string_view key) {
  std::string out;
  size_t pos = 0;
  while (pos < key.size()) {
    if (key[pos] == '%' && pos + 2 < key.size()) {
      std::string hex = absl::AsciiStrToLower(key.substr(pos + 1, 2));
      if (hex == "2e") { out += '.'; pos += 3; continue; }
      if (hex == "2f" || hex == "5c") { out += '/'; pos += 3; continue; }
    }
    const size_t start = pos;
    uint32_t cp = 0;
    if (!NextCodePoint(key, &pos, &cp)) return std::string(key);  // refused elsewhere
    switch (cp) {
      case '\\':
      case 0xFF0F:  // FULLWIDTH SOLIDUS
      case 0xFF3C:  // FULLWIDTH REVERSE SOLIDUS
      case 0x2215:  // DIVISION SLASH
        out += '/';
        break;
      case 0xFF0E:  // FULLWIDTH FULL STOP
      case 0x2024:  // ONE DOT LEADER
      case 0xFE52:  // SMALL FULL STOP
        out += '.';
        break;
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
  const std::string path = AsPath(key);
  for (absl::string_view segment : absl::StrSplit(path, '/')) {
    if (segment == "." || segment == "..") {
      return Invalid(field, absl::StrCat("contains a '", segment,
                                         "' path segment once '\\', %2e, %2f, %5c or a full-width "
                                         "dot or slash is read as a path reads it"));
    }
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::common
