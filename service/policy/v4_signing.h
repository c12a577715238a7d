// OSS4-HMAC-SHA256 building blocks shared by POST policies (post_policy.h)
// and presigned URLs (presign.h); see oss-protocol.md §2.2 and §3.2.
// Pure functions, thread-safe. `region` is the standard region ID
// ("cn-hangzhou"), never the "oss-" endpoint form; `date` is taken in UTC.
#ifndef UPLOADBROKER_POLICY_V4_SIGNING_H_
#define UPLOADBROKER_POLICY_V4_SIGNING_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace uploadbroker::policy {

inline constexpr absl::string_view kV4Algorithm = "OSS4-HMAC-SHA256";

// Raw 32-byte signing key:
//   kDate    = HMAC256("aliyun_v4" + secret, yyyymmdd)
//   kRegion  = HMAC256(kDate, region)
//   kService = HMAC256(kRegion, "oss")
//   kSigning = HMAC256(kService, "aliyun_v4_request")
std::string V4SigningKey(absl::string_view secret, absl::Time date,
                         absl::string_view region);

// Lowercase hex of HMAC256(V4SigningKey(secret, date, region), string_to_sign).
std::string V4Signature(absl::string_view secret, absl::Time date,
                        absl::string_view region,
                        absl::string_view string_to_sign);

// "<yyyymmdd>/<region>/oss/aliyun_v4_request".
std::string V4Scope(absl::Time date, absl::string_view region);

// "<access_key_id>/<yyyymmdd>/<region>/oss/aliyun_v4_request".
std::string V4Credential(absl::string_view access_key_id, absl::Time date,
                         absl::string_view region);

}  // namespace uploadbroker::policy

#endif  // UPLOADBROKER_POLICY_V4_SIGNING_H_
