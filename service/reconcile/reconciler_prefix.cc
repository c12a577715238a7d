// Reconciler's settlement of prefix authorizations: list the prefix for an
// object the intent's upload may have written (see reconciler.h).
#include "absl/strings/str_cat.h"
#include "common/log_safe.h"
#include "common/status_macros.h"
#include "reconcile/reconciler.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::reconcile {

Reconciler::Outcome Reconciler::SettlePrefix(const v1::Upload& intent,
                                             const config::Bucket& bucket) {
  const std::string& id = intent.upload_id();
  absl::StatusOr<absl::flat_hash_set<std::string>> taken = CompletedKeysUnder(intent);
  if (absl::IsResourceExhausted(taken.status())) {
    return Expire(intent, std::string(taken.status().message()));
  }
  if (!taken.ok()) {
    spdlog::warn("reconciler: {}: {}; left PENDING", common::LogSafe(id),
                 common::LogSafeStatus(taken.status()));
    return Outcome::kFailed;
  }
  // Last-Modified has whole seconds, so the creation time is taken whole too.
  const absl::Time created = absl::FromUnixSeconds(intent.created_at().seconds());
  // A candidate the later checks turn down is remembered, so the listing
  // goes on to the next one instead of settling on the first it meets.
  absl::Status failure = absl::OkStatus();
  auto candidate = [&](const ossapi::ListedObject& o) {
    if (o.last_modified < created - options_.clock_skew || taken->contains(o.key)) return false;
    v1::Upload exact = intent;
    exact.set_key(o.key);
    exact.set_key_is_prefix(false);
    absl::StatusOr<bool> later = IssuedAgainBefore(exact, o.last_modified);
    if (!later.ok()) {
      failure = later.status();
      return true;  // stop listing; reported below
    }
    return !*later;
  };
  absl::StatusOr<std::optional<ossapi::ListedObject>> found =
      options_.lister->FindFirst(bucket, intent.key(), candidate);
  if (absl::IsResourceExhausted(found.status())) {
    return Expire(intent, absl::StrCat("no object found within the listing's bound (",
                                       found.status().message(), ")"));
  }
  if (!found.ok() || !failure.ok()) {
    spdlog::warn("reconciler: {}: {}; left PENDING", common::LogSafe(id),
                 common::LogSafeStatus(failure.ok() ? found.status() : failure));
    return Outcome::kFailed;
  }
  if (!found->has_value()) {
    return Expire(intent, "no object under the prefix was written after the authorization");
  }
  const std::string& key = (*found)->key;
  absl::StatusOr<ObjectFacts> facts = probe_.Head(bucket, key);
  if (absl::IsNotFound(facts.status())) {
    return Expire(intent, absl::StrCat("the listed object ", key, " is gone"));
  }
  if (!facts.ok()) {
    spdlog::warn("reconciler: {}: {}; left PENDING", common::LogSafe(id),
                 common::LogSafeStatus(facts.status()));
    return Outcome::kFailed;
  }
  return CompleteFromOss(intent, key, *facts);
}

absl::StatusOr<absl::flat_hash_set<std::string>> Reconciler::CompletedKeysUnder(
    const v1::Upload& intent) {
  absl::flat_hash_set<std::string> keys;
  ledger::UploadQuery q;
  q.buckets = {intent.bucket()};
  q.key_prefix = intent.key();
  q.state = v1::UPLOAD_STATE_COMPLETED;
  q.limit = 1000;
  for (int read = 0; read < kMaxListedUploads; read += q.limit) {
    UB_ASSIGN_OR_RETURN(ledger::UploadPage page, ledger_.ListUploads(q));
    for (const v1::Upload& other : page.uploads) {
      if (other.upload_id() != intent.upload_id()) keys.insert(other.completion().key());
    }
    if (page.next_before_seq == 0) return keys;
    q.before_seq = page.next_before_seq;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "more than ", kMaxListedUploads, " completed uploads under ", intent.bucket(), "/",
      intent.key(), ": too many to tell which object is this one's"));
}

}  // namespace uploadbroker::reconcile
