#include "auth/identity.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace uploadbroker::auth {

absl::Status CheckBucket(const Identity& caller, absl::string_view bucket) {
  const std::vector<std::string>& buckets = caller.scope.buckets;
  if (std::find(buckets.begin(), buckets.end(), bucket) == buckets.end()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "bucket: caller '", caller.name, "' may not upload to bucket '", bucket, "'"));
  }
  return absl::OkStatus();
}

absl::Status CheckKey(const Identity& caller, absl::string_view key, bool is_prefix) {
  if (caller.scope.key_prefixes.empty()) return absl::OkStatus();
  for (const std::string& p : caller.scope.key_prefixes) {
    // A requested prefix shorter than the allowed one would let the uploader
    // leave the scope, so it must itself start with the allowed prefix.
    if (absl::StartsWith(key, p)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      is_prefix ? "key_prefix" : "key", ": '", key, "' is outside caller '",
      caller.name, "' allowed prefixes"));
}

bool InScope(const Identity& caller, absl::string_view bucket, absl::string_view key) {
  return CheckBucket(caller, bucket).ok() && CheckKey(caller, key, false).ok();
}

bool MayRead(const Identity& caller, absl::string_view owner) {
  const std::vector<std::string>& readers = caller.read_callers;
  if (std::find(readers.begin(), readers.end(), kAnyCaller) != readers.end()) return true;
  if (owner.empty()) return false;
  return owner == caller.name || std::find(readers.begin(), readers.end(), owner) != readers.end();
}

std::vector<std::string> ReadableCallers(const Identity& caller) {
  const std::vector<std::string>& readers = caller.read_callers;
  if (std::find(readers.begin(), readers.end(), kAnyCaller) != readers.end()) return {};
  std::vector<std::string> out = {caller.name};
  for (const std::string& r : readers) {
    if (std::find(out.begin(), out.end(), r) == out.end()) out.push_back(r);
  }
  return out;
}

}  // namespace uploadbroker::auth
