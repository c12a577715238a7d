#include "auth/authenticator.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

Authenticator::Authenticator(const std::vector<config::Caller>& callers, FailureHook on_failure)
    : on_failure_(std::move(on_failure)) {
  Reload(callers);
}

void Authenticator::Reload(const std::vector<config::Caller>& callers) {
  std::shared_ptr<const Snapshot> previous;  // released after the lock
  absl::MutexLock lock(&mu_);
  auto fresh = std::make_shared<Snapshot>(current_ == nullptr ? 1 : current_->generation + 1, live_);
  fresh->known.reserve(callers.size());
  for (const config::Caller& c : callers) {
    fresh->known.push_back({c.api_key_sha256, c.client_cert_uri, IdentityOf(c)});
  }
  previous = std::exchange(current_, std::move(fresh));
}

std::shared_ptr<const Authenticator::Snapshot> Authenticator::Current() const {
  absl::ReaderMutexLock lock(&mu_);
  return current_;
}

uint64_t Authenticator::generation() const {
  absl::ReaderMutexLock lock(&mu_);
  return current_->generation;
}

Principal Authenticator::PrincipalOf(const std::shared_ptr<const Snapshot>& s, const Known& k) {
  Principal p;
  p.identity = std::shared_ptr<const Identity>(s, &k.identity);  // shares the snapshot
  p.generation = s->generation;
  return p;
}

const Authenticator::Known* Authenticator::MatchKey(const Snapshot& s,
                                                    absl::string_view sha256_hex) {
  const Known* found = nullptr;
  // Compare against every caller so timing does not reveal which one matched.
  for (const Known& k : s.known) {
    if (common::ConstantTimeEquals(sha256_hex, k.api_key_sha256)) found = &k;
  }
  return found;
}

const Authenticator::Known* Authenticator::MatchCertificate(const Snapshot& s,
                                                            absl::Span<const std::string> uris,
                                                            bool* ambiguous) {
  *ambiguous = false;
  const Known* found = nullptr;
  for (const Known& k : s.known) {
    if (k.client_cert_uri.empty()) continue;
    for (const std::string& uri : uris) {
      if (uri != k.client_cert_uri) continue;
      if (found != nullptr && found != &k) {
        *ambiguous = true;
        return nullptr;
      }
      found = &k;
    }
  }
  return found;
}

absl::StatusOr<Principal> Authenticator::Authenticate(absl::string_view header,
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
  std::shared_ptr<const Snapshot> snapshot = Current();
  const Known* found = MatchKey(*snapshot, presented);
  if (found == nullptr) return fail("unknown_key", "unknown API key");
  Principal p = PrincipalOf(snapshot, *found);
  p.api_key_sha256 = std::move(presented);
  return p;
}

absl::StatusOr<Principal> Authenticator::AuthenticateCertificate(
    absl::Span<const std::string> peer_uris, absl::string_view peer) const {
  std::shared_ptr<const Snapshot> snapshot = Current();
  bool ambiguous = false;
  const Known* found = MatchCertificate(*snapshot, peer_uris, &ambiguous);
  if (ambiguous) {
    if (on_failure_) on_failure_("ambiguous_certificate", peer);
    return absl::UnauthenticatedError("the client certificate's URIs name more than one caller");
  }
  if (found == nullptr) {
    if (on_failure_) on_failure_("unknown_certificate", peer);
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer <api key>' metadata, and no client certificate URI "
        "names a caller");
  }
  Principal p = PrincipalOf(snapshot, *found);
  p.certificate_uris.assign(peer_uris.begin(), peer_uris.end());
  return p;
}

absl::StatusOr<Principal> Authenticator::Recheck(const Principal& held,
                                                 uint64_t* checked) const {
  std::shared_ptr<const Snapshot> snapshot = Current();
  if (checked != nullptr) *checked = snapshot->generation;
  if (snapshot->generation == held.generation) return held;
  const std::string& name = held->name;
  const Known* found;
  if (!held.api_key_sha256.empty()) {
    found = MatchKey(*snapshot, held.api_key_sha256);
    if (found == nullptr) {
      return absl::UnauthenticatedError(absl::StrCat(
          "the API key this call authenticated with (caller '", name,
          "') was revoked by a configuration reload"));
    }
  } else {
    bool ambiguous = false;
    found = MatchCertificate(*snapshot, held.certificate_uris, &ambiguous);
    if (found == nullptr) {
      return absl::UnauthenticatedError(absl::StrCat(
          "the client certificate this call authenticated with (caller '", name, "') ",
          ambiguous ? "names more than one caller" : "no longer names a caller",
          " after a configuration reload"));
    }
  }
  if (found->identity.name != name) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the credential this call authenticated with no longer names caller '", name,
        "' after a configuration reload"));
  }
  Principal p = PrincipalOf(snapshot, *found);
  p.api_key_sha256 = held.api_key_sha256;
  p.certificate_uris = held.certificate_uris;
  return p;
}

}  // namespace uploadbroker::auth
