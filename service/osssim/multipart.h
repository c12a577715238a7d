// ParseFormData / ParseFormFile: split a multipart/form-data body
// (PostObject, oss-protocol.md §1) into its parts with GMime, enforcing
// OSS's field limits (§1.4). ParseFormFile reads a body staged on disk and
// never holds the file part in memory: GMime parses the seekable file in
// place (persistent stream) and the file part's bytes are copied a piece at
// a time into a StagedFile. Thread-safe (GMime is initialised once).
#ifndef UPLOADBROKER_OSSSIM_MULTIPART_H_
#define UPLOADBROKER_OSSSIM_MULTIPART_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "osssim/staged_file.h"

namespace uploadbroker::osssim {

struct FormPart {
  std::string name;          // from Content-Disposition, as sent
  std::string filename;      // empty unless given
  std::string content_type;  // the part's Content-Type header; empty if absent
  std::string value;         // raw bytes (ParseFormFile: empty for `file`)
};

struct FormLimits {
  size_t max_name_bytes = 8 * 1024;                  // [EC-0006-00000110]
  size_t max_value_bytes = 2 * 1024 * 1024;          // per field but `file`
  size_t max_fields_bytes = 8 * 1024 * 1024;         // all fields before `file`
  size_t max_parts = 1000;
};

// Parts in wire order, the same whether or not a line end follows the close
// delimiter (RFC 2046 makes it optional). InvalidArgument if `content_type` is not
// multipart/form-data with a boundary, if the body does not parse, if a part
// is nested multipart or has no name, or a limit is exceeded. The `file`
// part's value is exempt from the per-value limit.
absl::StatusOr<std::vector<FormPart>> ParseFormData(absl::string_view content_type,
                                                    absl::string_view body,
                                                    const FormLimits& limits = {});


// What ParseFormFile expects at the start of the staged file: GMime parses a
// MIME entity, so the request's Content-Type header comes first.
std::string FormEntityHead(absl::string_view content_type);

// Parses the file at `path` (FormEntityHead(content_type), then the body).
// The last part, when named `file` (any case), is written to `file` and its
// FormPart has an empty value; an earlier part named `file` is not read at
// all (PostObject refuses such a form). `file` is not finished. Errors as
// ParseFormData, plus Internal when the staged file cannot be read or
// `file` cannot be written.
absl::StatusOr<std::vector<FormPart>> ParseFormFile(absl::string_view content_type,
                                                    const std::string& path, StagedFile& file,
                                                    const FormLimits& limits = {});

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_MULTIPART_H_
