// Completion rules: whether an object OSS reports (through an upload
// callback, or a HeadObject answer the reconciler got) is the upload an
// intent authorized, and the Completion recorded for it.
//
// Both settlement paths, ingest/ (callbacks) and reconcile/ (HeadObject),
// use these rules so an object is judged the same way whichever way it was
// reported. Pure functions; any thread.
#ifndef UPLOADBROKER_COMPLETION_COMPLETION_H_
#define UPLOADBROKER_COMPLETION_COMPLETION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::completion {

// What OSS says about one stored object. Fields OSS did not report stay
// empty (or 0).
struct ReportedObject {
  std::string bucket;
  std::string key;
  int64_t size = 0;
  std::string etag;          // without quotes
  std::string content_type;  // as OSS reports it (parameters allowed)
  std::string crc64;
  std::string content_md5;
  std::string image_height;  // decimal, as OSS reported it
  std::string image_width;
  std::string image_format;
  std::string client_ip;
  std::string request_id;
  std::string operation;
};

// The operation OSS names in a callback (and the reconciler assumes for a
// multipart intent's object) when CompleteMultipartUpload wrote the object.
inline constexpr char kCompleteMultipartUpload[] = "CompleteMultipartUpload";

// The part count a multipart ETag ("<hex>-<count>") carries; 0 for any other.
int PartCountOf(const std::string& etag);

// Checks the object against the intent as stored. OK when it may complete
// the intent, or when it is the very object that already completed it (a
// repeated report: bucket, key, size and ETag all equal the recorded
// completion). PermissionDenied naming the field when the object lies
// outside the intent's bucket, key or prefix, size range or content types,
// or, for a multipart intent, was not written by CompleteMultipartUpload or
// its ETag does not carry the planned part count;
// FailedPrecondition when the intent expired, another object completed it,
// or a repeat differs in bucket or size.
absl::Status CheckAgainstIntent(const ReportedObject& object, const v1::Upload& intent);

// The Completion recorded for `object`, marked with where it came from; an
// object written by CompleteMultipartUpload records its part count.
v1::Completion ToCompletion(const ReportedObject& object, v1::CompletionSource source);

}  // namespace uploadbroker::completion

#endif  // UPLOADBROKER_COMPLETION_COMPLETION_H_
