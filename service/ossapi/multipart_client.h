// MultipartClient: the broker's own requests to OSS for multipart uploads
// (oss-protocol.md §4.8): InitiateMultipartUpload, ListParts and
// AbortMultipartUpload, each presigned with V4 (policy/presign.h) and sent
// with libcurl at the bucket's api_host: no redirects, http/https only,
// bounded timeouts. Uploading parts and completing are the uploader's, with
// URLs the broker presigns (issue/multipart_issuer.h).
//
// Thread-safe; every call blocks for at most about `timeout` (ListParts
// once per page of 1,000 parts), so call it from a thread that may block.
// Errors: OSS's answers become statuses naming the OSS error code and
// request id (NotFound for NoSuchUpload, AlreadyExists for
// FileAlreadyExists, FailedPrecondition otherwise for 4xx); transport
// failures and 5xx are Unavailable.
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

  // InitiateMultipartUpload with the object's Content-Type; with
  // `forbid_overwrite`, x-oss-forbid-overwrite: true. Returns OSS's UploadId.
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
  struct Answer {
    long status = 0;
    std::string body;
  };
  absl::StatusOr<Answer> Send(const config::Bucket& bucket, const std::string& key,
                              const std::string& method,
                              std::vector<std::pair<std::string, std::string>> query,
                              std::vector<std::pair<std::string, std::string>> headers,
                              const std::string& what);

  credentials::CredentialProvider& creds_;
  const common::Clock& clock_;
  const absl::Duration timeout_;
};

// The text of the first <tag>…</tag> in `xml` ("" if absent), entities
// decoded. OSS's answers here are flat documents of known small elements.
std::string XmlElement(absl::string_view xml, absl::string_view tag, size_t* pos = nullptr);

}  // namespace uploadbroker::ossapi

#endif  // UPLOADBROKER_OSSAPI_MULTIPART_CLIENT_H_
