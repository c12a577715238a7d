#include "auth/authenticator.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/encoding.h"

namespace uploadbroker::auth {

absl::StatusOr<const config::Caller*> Authenticator::Authenticate(
    absl::string_view header) const {
  if (header.empty()) {
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer <api key>' metadata");
  }
  constexpr absl::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "authorization metadata must be 'Bearer <api key>'");
  }
  std::string presented =
      common::HexEncode(common::Sha256(absl::StripAsciiWhitespace(header.substr(kScheme.size()))));
  const config::Caller* found = nullptr;
  // Compare against every caller so timing does not reveal which one matched.
  for (const config::Caller& c : callers_) {
    if (common::ConstantTimeEquals(presented, c.api_key_sha256)) found = &c;
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown API key");
  return found;
}

absl::Status CheckBucket(const config::Caller& caller, absl::string_view bucket) {
  if (std::find(caller.buckets.begin(), caller.buckets.end(), bucket) ==
      caller.buckets.end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "bucket: caller '", caller.name, "' may not upload to bucket '", bucket, "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckKey(const config::Caller& caller, absl::string_view key,
                      bool is_prefix) {
  if (caller.key_prefixes.empty()) return absl::OkStatus();
  for (const std::string& p : caller.key_prefixes) {
    // A requested prefix shorter than the allowed one would let the uploader
    // leave the scope, so it must itself start with the allowed prefix.
    if (absl::StartsWith(key, p)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      is_prefix ? "key_prefix" : "key", ": '", key, "' is outside caller '",
      caller.name, "' allowed prefixes"));
}

bool InScope(const config::Caller& caller, absl::string_view bucket,
             absl::string_view key) {
  return CheckBucket(caller, bucket).ok() && CheckKey(caller, key, false).ok();
}

}  // namespace uploadbroker::auth
