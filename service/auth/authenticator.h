// Authenticator: maps the `authorization: Bearer <key>` metadata of an RPC,
// or the URI SANs of a verified client certificate (mutual TLS), to the
// Identity of a configured caller. Either way the caller gets the same
// Identity and Scope.
//
// API keys are never stored: the config holds their SHA-256, and every
// configured hash is compared in constant time. The Authenticator copies
// what it needs from the config (it does not reference it) into an
// immutable, numbered snapshot; Reload swaps in a new snapshot atomically (a
// call sees either the old callers or the new ones, never a mix). Any thread
// may call any method.
//
// Lifetime: authentication returns a Principal, which shares ownership of
// the snapshot it was found in. A call or stream keeps the identity it
// authenticated with for as long as it holds the Principal; a replaced
// snapshot is freed when the last Principal from it is released (so
// reloads do not accumulate memory; live_snapshots() counts them).
//
// Revocation: Recheck(principal) re-authenticates the credential a
// long-lived call (Subscribe, and any future stream) presented against the
// current snapshot. Whoever owns such calls runs it after Reload (see
// stream::EventStreamer::Recheck), so revoking a key, a certificate mapping
// or a scope reaches open streams, not only new calls.
//
// Every failure of Authenticate/AuthenticateCertificate is reported to the
// FailureHook with a stable reason ("missing", "malformed", "unknown_key",
// "unknown_certificate", "ambiguous_certificate") and the peer the caller
// passed, for counting and (rate-limited) logging; the hook runs on the
// calling thread and must be thread-safe and fast. Recheck does not report.
#ifndef UPLOADBROKER_AUTH_AUTHENTICATOR_H_
#define UPLOADBROKER_AUTH_AUTHENTICATOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "auth/identity.h"
#include "config/config.h"

namespace uploadbroker::auth {

// The identity a configured caller authenticates as.
Identity IdentityOf(const config::Caller& caller);

// Who a call authenticated as, and with what credential. Copyable; holding
// one keeps the caller snapshot it came from alive (and nothing else).
struct Principal {
  // Points into the snapshot (shares its ownership). Never null in a
  // Principal returned by the Authenticator.
  std::shared_ptr<const Identity> identity;
  // The snapshot's number (Authenticator::generation() when it was made).
  uint64_t generation = 0;
  // The credential presented: the SHA-256 (lowercase hex) of the API key,
  // or, when empty, the URI SANs of the verified client certificate.
  std::string api_key_sha256;
  std::vector<std::string> certificate_uris;

  const Identity& operator*() const { return *identity; }
  const Identity* operator->() const { return identity.get(); }
};

class Authenticator {
 public:
  using FailureHook = std::function<void(absl::string_view reason, absl::string_view peer)>;

  explicit Authenticator(const std::vector<config::Caller>& callers,
                         FailureHook on_failure = nullptr);

  // Unauthenticated when the header is missing, malformed or unknown. The
  // message never echoes the key. `peer` (e.g. grpc's "ipv4:1.2.3.4:5") is
  // only passed to the FailureHook.
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization_header,
                                         absl::string_view peer = "") const;

  // Replaces every caller (API key hashes and scopes) at once; calls after
  // it returns see only the new callers. The config was validated by
  // config::LoadConfig. Principals from older snapshots stay valid until
  // released (see Recheck for ending what they authorize).
  void Reload(const std::vector<config::Caller>& callers);

  // The caller whose client_cert_uri is one of `peer_uris`: the URI SANs of
  // a client certificate the TLS layer has already verified against
  // tls.grpc.client_ca_file (tls::PeerCertificateUris). Unauthenticated when
  // no caller, or more than one, matches (reported to the FailureHook as
  // "unknown_certificate" or "ambiguous_certificate").
  absl::StatusOr<Principal> AuthenticateCertificate(absl::Span<const std::string> peer_uris,
                                                    absl::string_view peer = "") const;

  // Re-authenticates `held`'s credential against the current snapshot: the
  // same Principal when nothing was reloaded since, else one from the
  // current snapshot (whose scope and read_callers may differ; the caller
  // decides whether they still cover what it serves). Unauthenticated when
  // the API key or certificate no longer names a caller, or now names a
  // different caller than `held`; the message names the caller, never the
  // credential. Cheap (a scan of the callers), never blocks beyond a
  // reader lock. `checked` (if set) receives the number of the snapshot the
  // answer comes from, on failure too.
  absl::StatusOr<Principal> Recheck(const Principal& held, uint64_t* checked = nullptr) const;

  // The current snapshot's number; every Reload increments it.
  uint64_t generation() const;
  // Snapshots not yet freed: the current one plus those still held by
  // Principals (calls in flight, open streams). For tests and metrics.
  int64_t live_snapshots() const { return live_->load(); }

 private:
  struct Known {
    std::string api_key_sha256;  // lowercase hex; empty: no API key
    std::string client_cert_uri;  // empty: no certificate identity
    Identity identity;
  };
  struct Snapshot {
    Snapshot(uint64_t gen, std::shared_ptr<std::atomic<int64_t>> counter)
        : generation(gen), live(std::move(counter)) {
      ++*live;
    }
    ~Snapshot() { --*live; }
    const uint64_t generation;
    std::vector<Known> known;
    const std::shared_ptr<std::atomic<int64_t>> live;
  };
  std::shared_ptr<const Snapshot> Current() const;
  // The caller the hash names (constant time over every caller), or null.
  static const Known* MatchKey(const Snapshot& s, absl::string_view sha256_hex);
  // The caller one of `uris` names; null with *ambiguous when more than one.
  static const Known* MatchCertificate(const Snapshot& s, absl::Span<const std::string> uris,
                                       bool* ambiguous);
  static Principal PrincipalOf(const std::shared_ptr<const Snapshot>& s, const Known& k);

  const FailureHook on_failure_;
  // Shared with every snapshot, so one outliving the Authenticator still
  // counts down safely.
  const std::shared_ptr<std::atomic<int64_t>> live_ = std::make_shared<std::atomic<int64_t>>(0);
  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uploadbroker::auth

#endif  // UPLOADBROKER_AUTH_AUTHENTICATOR_H_
