// UTF-8 decoding for checks on untrusted names (object keys, metadata).
// Hand-written because none of our libraries exposes a UTF-8 decoder (Abseil
// 20220623 keeps its UTF-8 code internal). Pure functions, thread-safe.
#ifndef UPLOADBROKER_COMMON_UTF8_H_
#define UPLOADBROKER_COMMON_UTF8_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace uploadbroker::common {

// Decodes the code point starting at s[*pos] into *cp and advances *pos past
// it. Returns false (nothing changed) on a truncated or malformed sequence, an
// overlong form, a surrogate or a value above U+10FFFF. Requires *pos < size.
bool NextCodePoint(absl::string_view s, size_t* pos, uint32_t* cp);

// Whether all of `s` is well-formed UTF-8 in the sense above.
bool IsValidUtf8(absl::string_view s);

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_UTF8_H_
