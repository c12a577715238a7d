#include "common/utf8.h"

namespace uploadbroker::common {

bool NextCodePoint(absl::string_view s, size_t* pos, uint32_t* cp) {
  const size_t i = *pos;
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t value;
  if (c < 0x80) {
    n = 1; value = c;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2; value = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3; value = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4; value = c & 0x07;
  } else {
    return false;
  }
  if (i + n > s.size()) return false;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return false;
    value = (value << 6) | (cc & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (value < kMin[n] || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return false;
  *pos = i + n;
  *cp = value;
  return true;
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  uint32_t cp;
  while (i < s.size()) {
    if (!NextCodePoint(s, &i, &cp)) return false;
  }
  return true;
}

}  // namespace uploadbroker::common
