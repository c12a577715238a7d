// Pieces every kind of authorization (POST policy, presigned PUT, multipart)
// shares when it builds an intent: the bucket and scope checks with the
// intent's first fields, the upload id, timestamps and the clamped validity.
// Pure functions (NewUploadId reads the CSPRNG), thread-safe.
#ifndef UPLOADBROKER_ISSUE_INTENT_UTIL_H_
#define UPLOADBROKER_ISSUE_INTENT_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/identity.h"
#include "config/config.h"
#include "google/protobuf/map.h"
#include "google/protobuf/timestamp.pb.h"
#include "policy/credential.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::issue {

// Longest validity OSS accepts for a V4 signature.
inline constexpr absl::Duration kMaxTtl = absl::Hours(24 * 7);

// "up_" + 12 hex digits of the issue time in milliseconds + 20 random hex
// digits (80 bits, so ids stay unguessable).
std::string NewUploadId(absl::Time now);

// What PrepareIntent fills in.
struct PreparedIntent {
  const config::Bucket* bucket = nullptr;  // the configured bucket (owned by the config)
  policy::Credential cred;                 // left to the caller
  absl::Time now;
  absl::Time expires;                      // left to the caller
  // upload_id, state PENDING, caller, bucket and metadata set.
  v1::Upload intent;
};

// The preparation every authorization starts with: `bucket_name` required
// and configured, the caller's scope allows it, `metadata` valid; then the
// intent's common fields at `now`. InvalidArgument or PermissionDenied,
// naming the field.
absl::Status PrepareIntent(const config::Config& config, const auth::Identity& caller,
                           const std::string& bucket_name,
                           const google::protobuf::Map<std::string, std::string>& metadata,
                           absl::Time now, PreparedIntent* c);

google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);

// Validity for a request: `ttl_seconds` (0: the configured default) clamped
// to the caller's max TTL, 7 days and the credential's remaining lifetime,
// in whole seconds. InvalidArgument for a negative ttl_seconds; Unavailable
// when the credential expires within a second.
absl::StatusOr<absl::Duration> ClampTtl(const config::Config& config, const auth::Identity& caller,
                                        int64_t ttl_seconds, const policy::Credential& cred,
                                        absl::Time now);

}  // namespace uploadbroker::issue

#endif  // UPLOADBROKER_ISSUE_INTENT_UTIL_H_
