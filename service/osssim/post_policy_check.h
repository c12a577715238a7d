// PostObject checks (oss-protocol.md §1-2): the form's signature (V1 or V4)
// and its policy (expiry and every condition kind). Pure functions,
// thread-safe. Each returns the error OSS would answer, or nullopt if the
// upload may proceed.
#ifndef UPLOADBROKER_OSSSIM_POST_POLICY_CHECK_H_
#define UPLOADBROKER_OSSSIM_POST_POLICY_CHECK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "osssim/oss_error.h"

namespace uploadbroker::osssim {

// The AccessKey pair the simulator's "account" has. An STS token sent with it
// is accepted as given.
struct SimCredentials {
  std::string access_key_id;
  std::string access_key_secret;
};

// Form field values by lowercased name (the first occurrence wins); the
// `file` part is not in it.
using FormFields = std::map<std::string, std::string>;

// V4 when x-oss-signature-version is present, else V1 (OSSAccessKeyId,
// policy, Signature: all or none). No signature at all is AccessDenied.
std::optional<OssError> CheckPostSignature(const FormFields& fields,
                                           const SimCredentials& creds,
                                           absl::Time now);

// Decodes and checks the policy in fields["policy"] against the form, the
// URL's bucket and the file's size.
std::optional<OssError> CheckPostPolicy(const FormFields& fields,
                                        absl::string_view bucket,
                                        int64_t file_size, absl::Time now);

// Parses "<yyyymmddTHHMMSSZ>"; nullopt if malformed.
std::optional<absl::Time> ParseV4DateTime(absl::string_view text);

// Splits a V4 credential "<ak>/<yyyymmdd>/<region>/oss/aliyun_v4_request".
struct V4CredentialParts {
  std::string access_key_id;
  std::string date;
  std::string region;
};
std::optional<V4CredentialParts> ParseV4Credential(absl::string_view credential);

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_POST_POLICY_CHECK_H_
