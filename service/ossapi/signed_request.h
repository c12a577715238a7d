// SendSigned: one request from the broker to OSS, presigned with V4
// (policy/presign.h) and sent with libcurl to the bucket's api_host: no
// redirects, http/https only, bounded timeouts, answers capped at 4 MiB.
// The transport MultipartClient and ObjectLister share.
//
// Thread-safe; blocks for at most about `timeout`. Errors: OSS's error
// answers become statuses naming the HTTP status and, from the <Error>
// document (read with ParseXml, ossapi/xml.h), OSS's error code, message
// and request id; a body that is no such document (empty, not XML) is said
// to be so, still naming the HTTP status. NotFound for NoSuchUpload,
// AlreadyExists for FileAlreadyExists, FailedPrecondition for any other
// 4xx; transport failures and 5xx are Unavailable.
#ifndef UPLOADBROKER_OSSAPI_SIGNED_REQUEST_H_
#define UPLOADBROKER_OSSAPI_SIGNED_REQUEST_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "config/config.h"
#include "credentials/credential_provider.h"

namespace uploadbroker::ossapi {

struct SignedRequest {
  std::string method;  // GET, POST (empty body), DELETE...
  std::string key;     // empty: a bucket-level request (/<bucket>/)
  std::vector<std::pair<std::string, std::string>> query;    // raw values
  std::vector<std::pair<std::string, std::string>> headers;  // all signed
  std::string what;  // names the request in errors, e.g. "ListParts b/k"
};

struct OssAnswer {
  long status = 0;
  std::string body;
};

// A 2xx answer, or the error described above.
absl::StatusOr<OssAnswer> SendSigned(credentials::CredentialProvider& creds,
                                     const common::Clock& clock, absl::Duration timeout,
                                     const config::Bucket& bucket, const SignedRequest& request);

}  // namespace uploadbroker::ossapi

#endif  // UPLOADBROKER_OSSAPI_SIGNED_REQUEST_H_
