// CredentialProvider: the OSS signing credential, read from files named in
// the config and re-read when a file changes (so an STS token refreshed by a
// sidecar, or a rotated AccessKey, takes effect without a restart).
//
// Thread-safe. Get() stats the files at most once per second; the secret is
// never logged and never appears in an error message.
#ifndef UPLOADBROKER_CREDENTIALS_CREDENTIAL_PROVIDER_H_
#define UPLOADBROKER_CREDENTIALS_CREDENTIAL_PROVIDER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "config/config.h"
#include "policy/credential.h"

namespace uploadbroker::credentials {

class CredentialProvider {
 public:
  // Reads the files once; an unreadable or malformed file is an error naming
  // the file and the field. `clock` is not owned and must outlive this.
  static absl::StatusOr<std::unique_ptr<CredentialProvider>> Create(
      const config::CredentialSource& source, const common::Clock* clock);

  // The current credential. Unavailable when the STS credential has expired
  // and the file has not been refreshed.
  absl::StatusOr<policy::Credential> Get();

 private:
  CredentialProvider(config::CredentialSource source, const common::Clock* clock)
      : source_(std::move(source)), clock_(clock) {}
  absl::StatusOr<policy::Credential> Read() const;
  int64_t ModificationStamp() const;

  const config::CredentialSource source_;
  const common::Clock* clock_;
  absl::Mutex mu_;
  policy::Credential current_ ABSL_GUARDED_BY(mu_);
  int64_t stamp_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace uploadbroker::credentials

#endif  // UPLOADBROKER_CREDENTIALS_CREDENTIAL_PROVIDER_H_
