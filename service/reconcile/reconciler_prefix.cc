// Reconciler's settlement of prefix authorizations: list the prefix for an
// object the intent's upload may have written (see reconciler.h).
#include "absl/strings/str_cat.h"
#include "common/log_safe.h"
#include "common/status_macros.h"
#include "completion/authorization.h"
#include "reconcile/reconciler.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::reconcile {

Reconciler::Outcome Reconciler::SettlePrefix(const v1::Upload& intent,
                                             const config::Bucket& bucket) {
  const std::string& id = intent.upload_id();
  absl::StatusOr<std::vector<v1::Upload>> others = UploadsUnder(intent, intent.key());
  if (absl::IsResourceExhausted(others.status())) {
    return Expire(intent, std::string(others.status().message()));
  }
  if (!others.ok()) {
    spdlog::warn("reconciler: {}: {}; left PENDING", common::LogSafe(id),
                 common::LogSafeStatus(others.status()));
    return Outcome::kFailed;
  }
  // The first listed object the callback path's rule gives to this
  // authorization (written after it, not another upload's).
  auto candidate = [&](const ossapi::ListedObject& o) {
    return completion::CheckWrittenUnder(intent, o.key, o.etag, o.last_modified, *others,
                                         options_.clock_skew)
        .ok();
  };
  absl::StatusOr<std::optional<ossapi::ListedObject>> found =
      options_.lister->FindFirst(bucket, intent.key(), candidate);
  if (absl::IsResourceExhausted(found.status())) {
    return Expire(intent, absl::StrCat("no object found within the listing's bound (",
                                       found.status().message(), ")"));
  }
  if (!found.ok()) {
    spdlog::warn("reconciler: {}: {}; left PENDING", common::LogSafe(id),
                 common::LogSafeStatus(found.status()));
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

absl::StatusOr<std::vector<v1::Upload>> Reconciler::UploadsUnder(const v1::Upload& intent,
                                                                 const std::string& prefix) {
  std::vector<v1::Upload> uploads;
  ledger::UploadQuery q;
  q.buckets = {intent.bucket()};
  q.key_prefix = prefix;
  q.limit = 1000;
  for (int read = 0; read < kMaxListedUploads; read += q.limit) {
    UB_ASSIGN_OR_RETURN(ledger::UploadPage page, ledger_.ListUploads(q));
    for (v1::Upload& other : page.uploads) {
      if (other.upload_id() != intent.upload_id()) uploads.push_back(std::move(other));
    }
    if (page.next_before_seq == 0) return uploads;
    q.before_seq = page.next_before_seq;
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "more than ", kMaxListedUploads, " uploads under ", intent.bucket(), "/", prefix,
      ": too many to tell which object is this one's"));
}

}  // namespace uploadbroker::reconcile
