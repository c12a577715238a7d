// Issuer: turns an authenticated caller's request into a signed upload
// authorization (PostObject form or presigned PUT) backed by a PENDING
// intent in the ledger.
//
// The response is filled in before the intent is stored, and `done` gets OK
// only after the intent is durable, so every authorization a client holds is
// known to the ledger; on any other status the response is meaningless.
// Thread-safe; `done` runs on the calling thread for rejected requests, on
// the ledger's thread otherwise; `response` must live until it runs. Errors: InvalidArgument (names the field), PermissionDenied
// (outside the caller's scope), Unavailable (no usable credential, ledger down).
#ifndef UPLOADBROKER_ISSUE_ISSUER_H_
#define UPLOADBROKER_ISSUE_ISSUER_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "auth/identity.h"
#include "common/clock.h"
#include "config/config.h"
#include "credentials/credential_provider.h"
#include "issue/intent_util.h"
#include "ledger/ledger.h"
#include "policy/callback_param.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::issue {


class Issuer {
 public:
  // None of the arguments is owned; all must outlive the Issuer.
  Issuer(const config::Config& config, credentials::CredentialProvider& creds,
         ledger::Ledger& ledger, const common::Clock& clock)
      : config_(config),
        creds_(creds),
        ledger_(ledger),
        clock_(clock),
        callback_param_(config.callback_url) {}

  void CreatePostPolicy(
      const auth::Identity& caller, const v1::CreatePostPolicyRequest& request,
      v1::CreatePostPolicyResponse* response, std::function<void(absl::Status)> done);

  void CreatePresignedPut(
      const auth::Identity& caller, const v1::CreatePresignedPutRequest& request,
      v1::CreatePresignedPutResponse* response, std::function<void(absl::Status)> done);

 private:
  // Validity for a request: clamped to the caller's max TTL, 7 days and the
  // credential's remaining lifetime.
  absl::StatusOr<absl::Duration> Ttl(const auth::Identity& caller,
                                     int64_t ttl_seconds,
                                     const policy::Credential& cred,
                                     absl::Time now) const;

  const config::Config& config_;
  credentials::CredentialProvider& creds_;
  ledger::Ledger& ledger_;
  const common::Clock& clock_;
  const policy::CallbackParamBuilder callback_param_;
};

}  // namespace uploadbroker::issue

#endif  // UPLOADBROKER_ISSUE_ISSUER_H_
