// ParseFormData: splits a multipart/form-data body (PostObject, oss-protocol.md
// §1) into its parts with GMime, enforcing OSS's field limits (§1.4).
// Pure function; thread-safe (GMime is initialised once).
#ifndef UPLOADBROKER_OSSSIM_MULTIPART_H_
#define UPLOADBROKER_OSSSIM_MULTIPART_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::osssim {

struct FormPart {
  std::string name;          // from Content-Disposition, as sent
  std::string filename;      // empty unless given
  std::string content_type;  // the part's Content-Type header; empty if absent
  std::string value;         // raw bytes
};

struct FormLimits {
  size_t max_name_bytes = 8 * 1024;                  // [EC-0006-00000110]
  size_t max_value_bytes = 2 * 1024 * 1024;          // per field but `file`
  size_t max_fields_bytes = 8 * 1024 * 1024;         // all fields before `file`
  size_t max_parts = 1000;
};

// Parts in wire order. InvalidArgument if `content_type` is not
// multipart/form-data with a boundary, if the body does not parse, if a part
// is nested multipart or has no name, or a limit is exceeded. The `file`
// part's value is exempt from the per-value limit.
absl::StatusOr<std::vector<FormPart>> ParseFormData(absl::string_view content_type,
                                                    absl::string_view body,
                                                    const FormLimits& limits = {});

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_MULTIPART_H_
