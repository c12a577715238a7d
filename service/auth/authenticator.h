// Authenticator: maps the `authorization: Bearer <key>` metadata of an RPC to
// a configured caller, and checks requests against that caller's scope.
//
// API keys are never stored: the config holds their SHA-256, and every
// configured hash is compared in constant time. Immutable after
// construction; any thread may call it. The referenced callers must outlive it.
#ifndef UPLOADBROKER_AUTH_AUTHENTICATOR_H_
#define UPLOADBROKER_AUTH_AUTHENTICATOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "config/config.h"

namespace uploadbroker::auth {

class Authenticator {
 public:
  explicit Authenticator(const std::vector<config::Caller>& callers)
      : callers_(callers) {}

  // Unauthenticated when the header is missing, malformed or unknown. The
  // message never echoes the key.
  absl::StatusOr<const config::Caller*> Authenticate(
      absl::string_view authorization_header) const;

 private:
  const std::vector<config::Caller>& callers_;
};

// PermissionDenied unless `bucket` is one of the caller's buckets.
absl::Status CheckBucket(const config::Caller& caller, absl::string_view bucket);

// PermissionDenied unless every key starting with `key` (or `key` itself,
// when exact) lies inside one of the caller's prefixes.
absl::Status CheckKey(const config::Caller& caller, absl::string_view key,
                      bool is_prefix);

// True when `key` lies in the caller's scope (bucket and prefixes).
bool InScope(const config::Caller& caller, absl::string_view bucket,
             absl::string_view key);

}  // namespace uploadbroker::auth

#endif  // UPLOADBROKER_AUTH_AUTHENTICATOR_H_
