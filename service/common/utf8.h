// UTF-8 well-formedness, the one check the project uses for untrusted text
// (callback fields, object keys, metadata). Pure function, thread-safe.
#ifndef UPLOADBROKER_COMMON_UTF8_H_
#define UPLOADBROKER_COMMON_UTF8_H_

#include "absl/strings/string_view.h"

namespace uploadbroker::common {

// True when `s` is well-formed UTF-8 per Unicode 15 table 3-7: no overlong
// forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
// truncated sequence. The empty string is valid.
bool IsValidUtf8(absl::string_view s);

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_UTF8_H_
