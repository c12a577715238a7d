// Byte encodings used by the OSS protocol: base64 (standard alphabet), hex,
// RFC 3986 percent-encoding and percent-decoding. Pure functions, thread-safe.
#ifndef UPLOADBROKER_COMMON_ENCODING_H_
#define UPLOADBROKER_COMMON_ENCODING_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::common {

// Standard base64 with padding.
std::string Base64Encode(absl::string_view bytes);
// Strict standard base64: padding required, no whitespace. InvalidArgument
// on anything else.
absl::StatusOr<std::string> Base64Decode(absl::string_view text);

// Lowercase hex (absl::BytesToHexString).
std::string HexEncode(absl::string_view bytes);

// Percent-encodes every byte except RFC 3986 unreserved characters
// (A-Z a-z 0-9 - _ . ~); '/' is kept as is when keep_slash is true.
// Uppercase hex digits, as OSS and the SDKs write them.
std::string UriEncode(absl::string_view text, bool keep_slash);

// Decodes %XX escapes; with plus_is_space, '+' becomes ' ' (form encoding).
// InvalidArgument on a truncated or non-hex escape.
absl::StatusOr<std::string> PercentDecode(absl::string_view text,
                                          bool plus_is_space);

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_ENCODING_H_
