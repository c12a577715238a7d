#include "common/request_limits.h"

#include "absl/strings/str_cat.h"

namespace uploadbroker::common {

absl::Status CheckCount(absl::string_view field, size_t count, size_t cap) {
  if (count <= cap) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", count, " entries, at most ", cap, " allowed"));
}

absl::Status CheckLength(absl::string_view field, absl::string_view value, size_t cap) {
  if (value.size() <= cap) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", value.size(), " bytes, at most ", cap, " allowed"));
}

}  // namespace uploadbroker::common
