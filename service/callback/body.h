// ParseCallbackBody: the fields of an OSS callback body (oss-protocol.md
// §4.4-§4.5), from JSON or form encoding. Pure function, thread-safe.
//
// Call it only on a body whose signature has been verified; the values are
// what OSS filled in and still have to be checked against the upload intent.
#ifndef UPLOADBROKER_CALLBACK_BODY_H_
#define UPLOADBROKER_CALLBACK_BODY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::callback {

// Body field names in parentheses. Optional fields are "" when missing, null
// or empty. All strings are valid UTF-8.
struct CallbackFields {
  std::string upload_id;     // (upload_id) required, our constant
  std::string bucket;        // (bucket) required
  std::string object;        // (object) required, decoded key
  std::string etag;          // (etag)
  std::string mime_type;     // (mimeType)
  std::string crc64;         // (crc64) decimal, as OSS sent it
  std::string content_md5;   // (contentMd5)
  std::string client_ip;     // (clientIp)
  std::string req_id;        // (reqId)
  std::string operation;     // (operation)
  std::string image_height;  // (imageInfo.height) decimal or ""
  std::string image_width;   // (imageInfo.width) decimal or ""
  std::string image_format;  // (imageInfo.format)
  int64_t size = -1;         // (size) required, >= 0
};

// Parses `body` by `content_type` (media type compared case-insensitively,
// parameters such as "; charset=utf-8" ignored):
//  * "application/json": one object; size, crc64 and imageInfo.* may be JSON
//    integers or strings; image fields as "imageInfo.height" keys or nested
//    {"imageInfo":{"height":..}} (not both).
//  * "application/x-www-form-urlencoded": key=value pairs split on '&' and the
//    first '=', percent-decoded with '+' as space.
// Unknown fields (e.g. x: variables, vpcId) are ignored. Returns
// InvalidArgument naming the field and reason: "Content-Type: unsupported
// 'text/plain'", "body: not valid JSON", "upload_id: missing", "size: not a
// non-negative integer", "size: out of range", "object: not valid UTF-8",
// "bucket: given twice", ...
absl::StatusOr<CallbackFields> ParseCallbackBody(absl::string_view content_type,
                                                 absl::string_view body);

}  // namespace uploadbroker::callback

#endif  // UPLOADBROKER_CALLBACK_BODY_H_
