// Credential: the AccessKey that signs OSS uploads, either a long-term pair or
// STS temporary credentials (security_token non-empty).
//
// A plain value; copy it freely and share it read-only between threads. Never
// log access_key_secret or security_token.
#ifndef UPLOADBROKER_POLICY_CREDENTIAL_H_
#define UPLOADBROKER_POLICY_CREDENTIAL_H_

#include <string>

#include "absl/time/time.h"

namespace uploadbroker::policy {

struct Credential {
  std::string access_key_id;
  std::string access_key_secret;
  std::string security_token;  // Empty unless STS.
  // When STS credentials stop working; InfiniteFuture for a long-term key.
  absl::Time expiration = absl::InfiniteFuture();
};

}  // namespace uploadbroker::policy

#endif  // UPLOADBROKER_POLICY_CREDENTIAL_H_
