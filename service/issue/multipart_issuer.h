// MultipartIssuer: presigned multipart uploads (oss-protocol.md §4.8) backed
// by a PENDING intent. Create calls OSS's InitiateMultipartUpload and stores
// the intent with OSS's UploadId and the plan; SignParts presigns UploadPart
// requests pinning each part's exact size (Content-Length is signed, V4), so
// the parts cannot add up to more than the plan; Complete presigns the
// CompleteMultipartUpload request with the upload callback in a signed
// header; Abort ends any PENDING intent (a multipart one is aborted in OSS
// first).
//
// Every method blocks (OSS requests, ledger commits): call it from a thread
// that may block, such as a synchronous gRPC handler. Thread-safe. Errors:
// InvalidArgument naming the field, PermissionDenied (outside the caller's
// scope), NotFound (unknown upload, or one the caller may not see),
// FailedPrecondition (not a PENDING multipart intent, or expired),
// Unavailable (OSS or the ledger unreachable, no credential).
#ifndef UPLOADBROKER_ISSUE_MULTIPART_ISSUER_H_
#define UPLOADBROKER_ISSUE_MULTIPART_ISSUER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "auth/identity.h"
#include "common/clock.h"
#include "config/config.h"
#include "credentials/credential_provider.h"
#include "ledger/ledger.h"
#include "ossapi/multipart_client.h"
#include "policy/callback_param.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::issue {

// OSS's limits and the broker's default part size.
inline constexpr int kMaxParts = 10000;
inline constexpr int64_t kMinPartSize = 100 * 1024;
inline constexpr int64_t kMaxPartSize = int64_t{5} << 30;
inline constexpr int64_t kDefaultPartSize = int64_t{8} << 20;
// Parts one SignUploadParts call signs: ~420 bytes each, so an answer stays
// well under gRPC's default 4 MiB message limit.
inline constexpr int kMaxPartsPerCall = 1000;

// The plan for `total_size` bytes: `part_size` (0: the default, grown in
// whole MiB until 10,000 parts suffice) and the part count.
// InvalidArgument naming total_size or part_size.
absl::StatusOr<v1::MultipartPlan> PlanParts(int64_t total_size, int64_t part_size);

// Size and offset of part `number` (1-based, within the plan).
int64_t PartSize(const v1::MultipartPlan& plan, int number);

class MultipartIssuer {
 public:
  // None of the arguments is owned; all must outlive the issuer.
  MultipartIssuer(const config::Config& config, credentials::CredentialProvider& creds,
                  ledger::Ledger& ledger, ossapi::MultipartClient& oss,
                  const common::Clock& clock)
      : config_(config),
        creds_(creds),
        ledger_(ledger),
        oss_(oss),
        clock_(clock),
        callback_param_(config.callback_url) {}

  absl::Status Create(const auth::Identity& caller, const v1::CreateMultipartUploadRequest& req,
                      v1::CreateMultipartUploadResponse* resp);
  absl::Status SignParts(const auth::Identity& caller, const v1::SignUploadPartsRequest& req,
                         v1::SignUploadPartsResponse* resp);
  absl::Status ListParts(const auth::Identity& caller, const v1::ListUploadedPartsRequest& req,
                         v1::ListUploadedPartsResponse* resp);
  absl::Status Complete(const auth::Identity& caller,
                        const v1::CompleteMultipartUploadRequest& req,
                        v1::CompleteMultipartUploadResponse* resp);
  absl::Status Abort(const auth::Identity& caller, const v1::AbortUploadRequest& req,
                     v1::AbortUploadResponse* resp);

 private:
  // The caller's PENDING multipart intent `upload_id`, not yet expired, and
  // its bucket. NotFound when another caller issued it (read_callers does
  // not let a caller act on others' uploads) or it lies outside the scope.
  absl::StatusOr<v1::Upload> LoadPending(const auth::Identity& caller,
                                         const std::string& upload_id, bool multipart_only);
  // Validity of URLs for `intent`: the request's (or default) TTL, never
  // past the intent's expiry.
  absl::StatusOr<absl::Duration> UrlTtl(const auth::Identity& caller, const v1::Upload& intent,
                                        int64_t ttl_seconds, const policy::Credential& cred,
                                        absl::Time now) const;

  const config::Config& config_;
  credentials::CredentialProvider& creds_;
  ledger::Ledger& ledger_;
  ossapi::MultipartClient& oss_;
  const common::Clock& clock_;
  const policy::CallbackParamBuilder callback_param_;
};

}  // namespace uploadbroker::issue

#endif  // UPLOADBROKER_ISSUE_MULTIPART_ISSUER_H_
