#include "issue/intent_util.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "auth/identity.h"
#include "common/crypto.h"
#include "common/status_macros.h"
#include "issue/validate.h"

namespace uploadbroker::issue {

absl::Status PrepareIntent(const config::Config& config, const auth::Identity& caller,
                           const std::string& bucket_name,
                           const google::protobuf::Map<std::string, std::string>& metadata,
                           absl::Time now, PreparedIntent* c) {
  if (bucket_name.empty()) return absl::InvalidArgumentError("bucket: required");
  c->bucket = config.FindBucket(bucket_name);
  if (c->bucket == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket: '", bucket_name, "' is not configured on this broker"));
  }
  UB_RETURN_IF_ERROR(auth::CheckBucket(caller, bucket_name));
  UB_RETURN_IF_ERROR(ValidateMetadata(metadata));
  c->now = now;
  c->intent.set_upload_id(NewUploadId(now));
  c->intent.set_state(v1::UPLOAD_STATE_PENDING);
  c->intent.set_caller(caller.name);
  c->intent.set_bucket(bucket_name);
  *c->intent.mutable_metadata() = metadata;
  return absl::OkStatus();
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  ts.set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(ts.seconds())) / absl::Nanoseconds(1)));
  return ts;
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

// Leading with the time makes ids of one period sort together, so the
// ledger's upload_id index grows at its right edge instead of touching a
// random page per intent; ids are not promised to be ordered (the random part
// breaks ties, clocks may step).
std::string NewUploadId(absl::Time now) {
  const uint64_t millis = static_cast<uint64_t>(std::max<int64_t>(0, absl::ToUnixMillis(now)));
  return absl::StrCat("up_", absl::Hex(millis & 0xffffffffffffULL, absl::kZeroPad12),
                      common::RandomHex(10));
}

absl::StatusOr<absl::Duration> ClampTtl(const config::Config& config, const auth::Identity& caller,
                                        int64_t ttl_seconds, const policy::Credential& cred,
                                        absl::Time now) {
  if (ttl_seconds < 0) return absl::InvalidArgumentError("ttl_seconds: must not be negative");
  absl::Duration ttl = ttl_seconds == 0 ? config.default_ttl : absl::Seconds(ttl_seconds);
  ttl = std::min({ttl, caller.scope.max_ttl, kMaxTtl});
  absl::Duration remaining = absl::Floor(cred.expiration - now, absl::Seconds(1));
  ttl = std::min(ttl, remaining);
  if (ttl < absl::Seconds(1)) {
    return absl::UnavailableError("the signing credential expires too soon to issue an authorization");
  }
  return absl::Floor(ttl, absl::Seconds(1));
}

}  // namespace uploadbroker::issue
