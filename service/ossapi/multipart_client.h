// MultipartClient: the broker's own requests to OSS for multipart uploads
// (oss-protocol.md §4.8): InitiateMultipartUpload, ListParts and
// AbortMultipartUpload, each sent with SendSigned (ossapi/signed_request.h).
// Uploading parts and completing are the uploader's, with URLs the broker
// presigns (issue/multipart_issuer.h).
//
// Thread-safe; every call blocks for at most about `timeout` (ListParts
// once per page of 1,000 parts), so call it from a thread that may block.
// Errors: those of SendSigned.
#ifndef UPLOADBROKER_OSSAPI_MULTIPART_CLIENT_H_
#define UPLOADBROKER_OSSAPI_MULTIPART_CLIENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "config/config.h"
#include "credentials/credential_provider.h"
#include "ossapi/signed_request.h"

namespace uploadbroker::ossapi {

// A part OSS holds.
struct HeldPart {
  int number = 0;
  int64_t size = 0;
  std::string etag;  // as OSS lists it (quoted)
};

class MultipartClient {
 public:
  // Neither is owned; both must outlive the client.
  MultipartClient(credentials::CredentialProvider& creds, const common::Clock& clock,
                  absl::Duration timeout = absl::Seconds(10))
      : creds_(creds), clock_(clock), timeout_(timeout) {}

  // InitiateMultipartUpload with the object's Content-Type and
  // x-oss-object-acl: private; with `forbid_overwrite`,
  // x-oss-forbid-overwrite: true. Returns OSS's UploadId.
  absl::StatusOr<std::string> Initiate(const config::Bucket& bucket, const std::string& key,
                                       const std::string& content_type, bool forbid_overwrite);
  // Every part OSS holds, ascending (follows ListParts' pages).
  absl::StatusOr<std::vector<HeldPart>> ListParts(const config::Bucket& bucket,
                                                  const std::string& key,
                                                  const std::string& oss_upload_id);
  // AbortMultipartUpload. NotFound when OSS no longer knows the upload.
  absl::Status Abort(const config::Bucket& bucket, const std::string& key,
                     const std::string& oss_upload_id);

 private:
  absl::StatusOr<OssAnswer> Send(const config::Bucket& bucket, const std::string& key,
                              const std::string& method,
                              std::vector<std::pair<std::string, std::string>> query,
                              std::vector<std::pair<std::string, std::string>> headers,
                              const std::string& what);

  credentials::CredentialProvider& creds_;
  const common::Clock& clock_;
  const absl::Duration timeout_;
};

}  // namespace uploadbroker::ossapi

#endif  // UPLOADBROKER_OSSAPI_MULTIPART_CLIENT_H_
