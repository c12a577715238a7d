#include "reconcile/reconciler.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/log_safe.h"
#include "common/status_macros.h"
#include "completion/authorization.h"
#include "completion/completion.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::reconcile {
namespace {

using common::LogSafe;
using common::LogSafeStatus;

// The object HeadObject found at the intent's key, for the completion rules
// a callback is judged by too.
completion::ReportedObject Reported(const v1::Upload& intent, const ObjectFacts& facts) {
  completion::ReportedObject o;
  o.bucket = intent.bucket();
  o.key = intent.key();
  o.size = facts.size;
  o.etag = facts.etag;
  o.content_type = facts.content_type;
  o.crc64 = facts.crc64;
  o.content_md5 = facts.content_md5;
  o.request_id = facts.request_id;
  // HeadObject does not say how the object was written; a multipart
  // intent's object can only come from CompleteMultipartUpload, and its
  // ETag ("<hex>-<parts>") is checked against the plan.
  if (intent.method() == v1::UPLOAD_METHOD_MULTIPART) {
    o.operation = completion::kCompleteMultipartUpload;
  }
  return o;
}

}  // namespace

Reconciler::Reconciler(const config::Config& config, ledger::Ledger& ledger, ObjectProbe& probe,
                       metrics::Registry& metrics, const common::Clock& clock, Options options)
    : config_(config),
      ledger_(ledger),
      probe_(probe),
      clock_(clock),
      options_(options),
      results_(metrics.AddCounter("upload_broker_reconciled_total",
                                  "Overdue PENDING intents checked with HeadObject, by result",
                                  {"result"})) {}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() { thread_ = std::thread([this] { Loop(); }); }

void Reconciler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Reconciler::Loop() {
  for (;;) {
    Pass pass = RunOnce();
    if (pass.completed + pass.expired + pass.settled + pass.failed > 0) {
      spdlog::info("reconciler: {} completed from OSS, {} expired, {} settled by callbacks, {} failed",
                   pass.completed, pass.expired, pass.settled, pass.failed);
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.interval);
    if (stopping_) return;
  }
}

Reconciler::Pass Reconciler::RunOnce() {
  Pass pass;
  // Intents that failed in this pass stay PENDING and keep their place at
  // the head of the listing (oldest first), so each listing asks for that
  // many more and skips them: each is tried once per pass and none starves
  // the ones behind it.
  absl::flat_hash_set<std::string> failed;
  while (!Stopping() && failed.size() < kMaxFailuresPerPass) {
    const int limit = options_.batch + static_cast<int>(failed.size());
    absl::StatusOr<std::vector<v1::Upload>> due =
        ledger_.ClaimExpiredPending(clock_.Now() - options_.grace, limit, options_.interval);
    if (!due.ok()) {
      spdlog::warn("reconciler: listing overdue intents: {}", LogSafeStatus(due.status()));
      results_.Inc({"failed"});
      ++pass.failed;
      break;
    }
    int tried = 0;
    for (const v1::Upload& intent : *due) {
      if (Stopping()) break;
      if (failed.contains(intent.upload_id())) continue;
      ++tried;
      switch (Settle(intent)) {
        case Outcome::kCompleted: ++pass.completed; results_.Inc({"completed"}); break;
        case Outcome::kExpired: ++pass.expired; results_.Inc({"expired"}); break;
        case Outcome::kSettled: ++pass.settled; results_.Inc({"settled"}); break;
        case Outcome::kFailed:
          ++pass.failed;
          results_.Inc({"failed"});
          failed.insert(intent.upload_id());
          break;
      }
    }
    if (tried == 0 || static_cast<int>(due->size()) < limit) break;  // nothing more is due
  }
  return pass;
}

Reconciler::Outcome Reconciler::Settle(const v1::Upload& intent) {
  const std::string& id = intent.upload_id();
  if (intent.key_is_prefix() && options_.lister == nullptr) {
    return Expire(intent, "a prefix authorization names no object to look for");
  }
  const config::Bucket* bucket = config_.FindBucket(intent.bucket());
  if (bucket == nullptr) {
    spdlog::warn("reconciler: {}: bucket '{}' is no longer configured; left PENDING", LogSafe(id),
                 LogSafe(intent.bucket()));
    return Outcome::kFailed;
  }
  if (intent.key_is_prefix()) return SettlePrefix(intent, *bucket);
  absl::StatusOr<ObjectFacts> facts = probe_.Head(*bucket, intent.key());
  if (absl::IsNotFound(facts.status())) {
    if (intent.method() == v1::UPLOAD_METHOD_MULTIPART && options_.multipart != nullptr) {
      absl::Status aborted =
          options_.multipart->Abort(*bucket, intent.key(), intent.multipart().oss_upload_id());
      if (!aborted.ok() && !absl::IsNotFound(aborted)) {
        spdlog::warn("reconciler: {}: {}; left PENDING", LogSafe(id), LogSafeStatus(aborted));
        return Outcome::kFailed;
      }
      return Expire(intent, "no such object in OSS; the multipart upload was aborted");
    }
    return Expire(intent, "no such object in OSS");
  }
  if (!facts.ok()) {
    spdlog::warn("reconciler: {}: {}; left PENDING", LogSafe(id), LogSafeStatus(facts.status()));
    return Outcome::kFailed;
  }
  absl::StatusOr<std::vector<v1::Upload>> others = UploadsUnder(intent, intent.key());
  if (absl::IsResourceExhausted(others.status())) {
    return Expire(intent, std::string(others.status().message()));
  }
  if (!others.ok()) {
    spdlog::warn("reconciler: {}: {}; left PENDING", LogSafe(id), LogSafeStatus(others.status()));
    return Outcome::kFailed;
  }
  // The callback path's rule: written under this authorization.
  if (absl::Status mine = completion::CheckWrittenUnder(intent, intent.key(), facts->etag, facts->last_modified,
                                                        *others, options_.clock_skew);
      !mine.ok()) {
    return Expire(intent, absl::StrCat("the object is not this authorization's upload: ", mine.message()));
  }
  return CompleteFromOss(intent, intent.key(), *facts);
}

Reconciler::Outcome Reconciler::CompleteFromOss(const v1::Upload& intent, const std::string& key,
                                                const ObjectFacts& facts) {
  const std::string& id = intent.upload_id();
  // The intent's limits are checked inside the completing transaction, by
  // the callback path's rule; an object outside them is not this upload.
  completion::ReportedObject object = Reported(intent, facts);
  object.key = key;
  absl::StatusOr<ledger::CompleteResult> done = ledger::CompleteUploadSync(
      ledger_, id, completion::ToCompletion(object, v1::COMPLETION_SOURCE_RECONCILED),
      [object](const v1::Upload& stored) { return completion::CheckAgainstIntent(object, stored); });
  if (absl::IsPermissionDenied(done.status())) {
    return Expire(intent, absl::StrCat("the object is not the authorized upload: ",
                                       done.status().message()));
  }
  if (done.ok()) {
    if (!done->appended) return Outcome::kSettled;
    spdlog::info("reconciler: {} completed from OSS: {}/{} ({} bytes)", LogSafe(id),
                 LogSafe(intent.bucket()), LogSafe(key), facts.size);
    return Outcome::kCompleted;
  }
  if (absl::IsFailedPrecondition(done.status())) return Outcome::kSettled;
  spdlog::warn("reconciler: {}: completing: {}; left PENDING", LogSafe(id),
               LogSafeStatus(done.status()));
  return Outcome::kFailed;
}

Reconciler::Outcome Reconciler::Expire(const v1::Upload& intent, absl::string_view why) {
  absl::StatusOr<v1::Event> event = ledger::ExpireUploadSync(ledger_, intent.upload_id(), v1::EXPIRY_REASON_EXPIRED);
  if (event.ok()) {
    spdlog::info("reconciler: {} expired: {}", LogSafe(intent.upload_id()),
                 LogSafe(why, common::kLogSafeMessageBytes));
    return Outcome::kExpired;
  }
  if (absl::IsFailedPrecondition(event.status())) return Outcome::kSettled;  // no longer PENDING
  spdlog::warn("reconciler: {}: expiring: {}; left PENDING", LogSafe(intent.upload_id()),
               LogSafeStatus(event.status()));
  return Outcome::kFailed;
}

}  // namespace uploadbroker::reconcile
