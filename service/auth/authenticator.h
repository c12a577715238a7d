// Authenticator: maps the `authorization: Bearer <key>` metadata of an RPC,
// or the URI SANs of a verified client certificate (mutual TLS), to the
// Identity of a configured caller. Either way the caller gets the same
// Identity and Scope.
//
// API keys are never stored: the config holds their SHA-256, and every
// configured hash is compared in constant time. The Authenticator copies
// what it needs from the config (it does not reference it) into an
// immutable snapshot; Reload swaps in a new snapshot atomically (a call sees
// either the old callers or the new ones, never a mix). Any thread may call
// any method. An Identity it returns lives as long as the Authenticator:
// replaced snapshots are retained (a few hundred bytes per caller per
// reload), so a call or stream that authenticated before a reload keeps
// its identity.
//
// Every failure is reported to the FailureHook with a stable reason
// ("missing", "malformed", "unknown_key", "unknown_certificate",
// "ambiguous_certificate") and the peer the caller passed,
// for counting and (rate-limited) logging; the hook runs on the calling
// thread and must be thread-safe and fast.
#ifndef UPLOADBROKER_AUTH_AUTHENTICATOR_H_
#define UPLOADBROKER_AUTH_AUTHENTICATOR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

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
  using FailureHook = std::function<void(absl::string_view reason, absl::string_view peer)>;

  explicit Authenticator(const std::vector<config::Caller>& callers,
                         FailureHook on_failure = nullptr);

  // Unauthenticated when the header is missing, malformed or unknown. The
  // message never echoes the key. `peer` (e.g. grpc's "ipv4:1.2.3.4:5") is
  // only passed to the FailureHook.
  absl::StatusOr<const Identity*> Authenticate(absl::string_view authorization_header,
                                               absl::string_view peer = "") const;

  // Replaces every caller (API key hashes and scopes) at once; calls after
  // it returns see only the new callers. The config was validated by
  // config::LoadConfig.
  void Reload(const std::vector<config::Caller>& callers);

  // The caller whose client_cert_uri is one of `peer_uris`: the URI SANs of
  // a client certificate the TLS layer has already verified against
  // tls.grpc.client_ca_file (tls::PeerCertificateUris). Unauthenticated when
  // no caller, or more than one, matches (reported to the FailureHook as
  // "unknown_certificate" or "ambiguous_certificate").
  absl::StatusOr<const Identity*> AuthenticateCertificate(
      absl::Span<const std::string> peer_uris, absl::string_view peer = "") const;

 private:
  struct Known {
    std::string api_key_sha256;  // lowercase hex; empty: no API key
    std::string client_cert_uri;  // empty: no certificate identity
    Identity identity;
  };
  using Snapshot = std::vector<Known>;
  static std::unique_ptr<const Snapshot> MakeSnapshot(const std::vector<config::Caller>& callers);

  const FailureHook on_failure_;
  mutable absl::Mutex mu_;
  const Snapshot* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Every snapshot ever made, current_ included (see the class comment).
  std::vector<std::unique_ptr<const Snapshot>> snapshots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uploadbroker::auth

#endif  // UPLOADBROKER_AUTH_AUTHENTICATOR_H_
