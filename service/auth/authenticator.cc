#include "auth/authenticator.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/crypto.h"
#include "common/encoding.h"

namespace uploadbroker::auth {

Identity IdentityOf(const config::Caller& caller) {
  Identity id;
  id.name = caller.name;
  id.scope.buckets = caller.buckets;
  id.scope.key_prefixes = caller.key_prefixes;
  id.scope.max_size = caller.max_size;
  id.scope.content_types = caller.content_types;
  id.scope.max_ttl = caller.max_ttl;
  id.read_callers = caller.read_callers;
  return id;
}

std::unique_ptr<const Authenticator::Snapshot> Authenticator::MakeSnapshot(
    const std::vector<config::Caller>& callers) {
  auto snapshot = std::make_unique<Snapshot>();
  snapshot->reserve(callers.size());
  for (const config::Caller& c : callers) {
    snapshot->push_back({c.api_key_sha256, c.client_cert_uri, IdentityOf(c)});
  }
  return snapshot;
}

Authenticator::Authenticator(const std::vector<config::Caller>& callers, FailureHook on_failure)
    : on_failure_(std::move(on_failure)) {
  Reload(callers);
}

void Authenticator::Reload(const std::vector<config::Caller>& callers) {
  std::unique_ptr<const Snapshot> fresh = MakeSnapshot(callers);
  absl::MutexLock lock(&mu_);
  current_ = fresh.get();
  snapshots_.push_back(std::move(fresh));
}

absl::StatusOr<const Identity*> Authenticator::Authenticate(absl::string_view header,
                                                            absl::string_view peer) const {
  auto fail = [this, peer](absl::string_view reason, absl::string_view message) {
    if (on_failure_) on_failure_(reason, peer);
    return absl::UnauthenticatedError(message);
  };
  if (header.empty()) {
    return fail("missing", "missing 'authorization: Bearer <api key>' metadata");
  }
  constexpr absl::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(header.substr(0, kScheme.size()), kScheme)) {
    return fail("malformed", "authorization metadata must be 'Bearer <api key>'");
  }
  std::string presented =
      common::HexEncode(common::Sha256(absl::StripAsciiWhitespace(header.substr(kScheme.size()))));
  const Snapshot* known;
  {
    absl::ReaderMutexLock lock(&mu_);
    known = current_;  // never freed before the Authenticator
  }
  const Identity* found = nullptr;
  // Compare against every caller so timing does not reveal which one matched.
  for (const Known& k : *known) {
    if (common::ConstantTimeEquals(presented, k.api_key_sha256)) found = &k.identity;
  }
  if (found == nullptr) return fail("unknown_key", "unknown API key");
  return found;
}

absl::StatusOr<const Identity*> Authenticator::AuthenticateCertificate(
    absl::Span<const std::string> peer_uris, absl::string_view peer) const {
  const Snapshot* known;
  {
    absl::ReaderMutexLock lock(&mu_);
    known = current_;  // never freed before the Authenticator
  }
  const Identity* found = nullptr;
  for (const Known& k : *known) {
    if (k.client_cert_uri.empty()) continue;
    for (const std::string& uri : peer_uris) {
      if (uri != k.client_cert_uri) continue;
      if (found != nullptr && found != &k.identity) {
        if (on_failure_) on_failure_("ambiguous_certificate", peer);
        return absl::UnauthenticatedError(
            "the client certificate's URIs name more than one caller");
      }
      found = &k.identity;
    }
  }
  if (found == nullptr) {
    if (on_failure_) on_failure_("unknown_certificate", peer);
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer <api key>' metadata, and no client certificate URI "
        "names a caller");
  }
  return found;
}

}  // namespace uploadbroker::auth
