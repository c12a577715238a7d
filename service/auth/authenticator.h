// Authenticator: maps the `authorization: Bearer <key>` metadata of an RPC,
// or the URI SANs of a verified client certificate (mutual TLS), to the
// Identity of a configured caller. Either way the caller gets the same
// Identity and Scope.
//
// API keys are never stored: the config holds their SHA-256, and every
// configured hash is compared in constant time. The Authenticator copies
// what it needs from the config (it does not reference it). Immutable after
// construction; any thread may call it. An Identity it returns lives as long
// as the Authenticator.
#ifndef UPLOADBROKER_AUTH_AUTHENTICATOR_H_
#define UPLOADBROKER_AUTH_AUTHENTICATOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "auth/identity.h"
#include "config/config.h"

namespace uploadbroker::auth {

// The identity a configured caller authenticates as.
Identity IdentityOf(const config::Caller& caller);

class Authenticator {
 public:
  explicit Authenticator(const std::vector<config::Caller>& callers);

  // Unauthenticated when the header is missing, malformed or unknown. The
  // message never echoes the key.
  absl::StatusOr<const Identity*> Authenticate(absl::string_view authorization_header) const;

  // The caller whose client_cert_uri is one of `peer_uris`: the URI SANs of
  // a client certificate the TLS layer has already verified against
  // tls.grpc.client_ca_file (tls::PeerCertificateUris). Unauthenticated when
  // no caller, or more than one, matches.
  absl::StatusOr<const Identity*> AuthenticateCertificate(
      absl::Span<const std::string> peer_uris) const;

 private:
  struct Known {
    std::string api_key_sha256;  // lowercase hex; empty: no API key
    std::string client_cert_uri;  // empty: no certificate identity
    Identity identity;
  };
  std::vector<Known> known_;
};

}  // namespace uploadbroker::auth

#endif  // UPLOADBROKER_AUTH_AUTHENTICATOR_H_
