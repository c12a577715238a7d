// The OSS upload-callback parameter the broker attaches to every upload
// (oss-protocol.md §4): a JSON body naming the upload and carrying every
// system variable OSS fills in. Pure functions, thread-safe.
#ifndef UPLOADBROKER_POLICY_CALLBACK_PARAM_H_
#define UPLOADBROKER_POLICY_CALLBACK_PARAM_H_

#include <string>

#include "absl/strings/string_view.h"

namespace uploadbroker::policy {

// The callbackBodyType the broker issues, and so the only Content-Type a
// callback to the broker may carry (ingest/callback_handler.h).
inline constexpr char kCallbackBodyType[] = "application/json";

// True for 1-128 characters from [A-Za-z0-9_-]: safe to embed in the body
// template, a JSON string, without escaping.
bool IsValidUploadId(absl::string_view upload_id);

// {"upload_id":"<id>","bucket":${bucket},"object":${object},...} with the
// system variables bucket, object, etag, size, mimeType, imageInfo.height,
// imageInfo.width, imageInfo.format, crc64, contentMd5, clientIp, reqId and
// operation left unquoted: OSS writes the JSON quoting itself. Not valid JSON
// until OSS substitutes the placeholders.
// Precondition (UB_CHECK): IsValidUploadId(upload_id).
std::string CallbackBodyTemplate(absl::string_view upload_id);

// base64 of {"callbackUrl":url,"callbackBody":CallbackBodyTemplate(id),
// "callbackBodyType":"application/json"}, for the x-oss-callback header, the
// callback query parameter or the callback form field.
// Preconditions (UB_CHECK): callback_url is non-empty printable ASCII (already
// percent-encoded, as OSS requires); IsValidUploadId(upload_id).
std::string BuildCallbackParam(absl::string_view callback_url,
                               absl::string_view upload_id);

// BuildCallbackParam for one callback URL and many uploads, without running
// the JSON serializer per upload. The constructor serializes the document
// with the JSON library for two probe ids that differ in one character; the
// two outputs then differ in exactly that byte (an id needs no escaping), so
// the bytes around it are the document with the id left out. Build(id) gives
// the same bytes as BuildCallbackParam(callback_url, id). Immutable after
// construction, so any thread may call Build.
class CallbackParamBuilder {
 public:
  // Same precondition on callback_url as BuildCallbackParam.
  explicit CallbackParamBuilder(absl::string_view callback_url);

  // Precondition (UB_CHECK): IsValidUploadId(upload_id).
  std::string Build(absl::string_view upload_id) const;

 private:
  std::string head_;  // the serialized document before the id ...
  std::string tail_;  // ... and after it
};

}  // namespace uploadbroker::policy

#endif  // UPLOADBROKER_POLICY_CALLBACK_PARAM_H_
