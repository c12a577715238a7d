#include "ingest/confirmer.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/check.h"

namespace uploadbroker::ingest {
namespace {

absl::string_view Unquoted(absl::string_view etag) {
  etag = absl::StripAsciiWhitespace(etag);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

}  // namespace

absl::Status CompareWithBucket(const completion::ReportedObject& reported,
                               const ossapi::ObjectFacts& held) {
  const std::string where = absl::StrCat(" (HeadObject on ", reported.bucket, "/", reported.key, ")");
  if (reported.size != held.size) {
    return absl::FailedPreconditionError(absl::StrCat("size: the callback reports ", reported.size,
                                                      ", the bucket holds ", held.size, where));
  }
  if (!absl::EqualsIgnoreCase(Unquoted(reported.etag), Unquoted(held.etag))) {
    return absl::FailedPreconditionError(absl::StrCat("etag: the callback reports '", reported.etag,
                                                      "', the bucket holds '", held.etag, "'", where));
  }
  if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(reported.content_type),
                              absl::StripAsciiWhitespace(held.content_type))) {
    return absl::FailedPreconditionError(
        absl::StrCat("mimeType: the callback reports '", reported.content_type,
                     "', the bucket holds '", held.content_type, "'", where));
  }
  return absl::OkStatus();
}

HeadObjectConfirmer::HeadObjectConfirmer(const config::Config& config, ossapi::ObjectProbe& probe,
                                         Options options)
    : config_(config), probe_(probe), options_(options) {
  UB_CHECK(options_.threads > 0 && options_.max_queue >= 0);
  for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { Work(); });
}

HeadObjectConfirmer::~HeadObjectConfirmer() { Shutdown(); }

void HeadObjectConfirmer::Shutdown() {
  std::deque<Task> left;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    left.swap(queue_);
  }
  for (Task& t : left) {
    t.done(absl::UnavailableError("broker shutting down: the upload is not confirmed"),
           ossapi::ObjectFacts{});
  }
  for (std::thread& w : workers_) w.join();
}

void HeadObjectConfirmer::Confirm(const completion::ReportedObject& object, Lookup lookup,
                                  Done done) {
  const config::Bucket* bucket = config_.FindBucket(object.bucket);
  if (bucket == nullptr) {
    done(absl::PermissionDeniedError(
             absl::StrCat("bucket: '", object.bucket, "' is not a bucket this broker serves")),
         ossapi::ObjectFacts{});
    return;
  }
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::UnavailableError("broker shutting down: the upload is not confirmed");
    } else if (static_cast<int>(queue_.size()) >= options_.max_queue) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "OSS could not confirm the upload: ", queue_.size(), " confirmations already waiting"));
    } else {
      queue_.push_back(Task{object, bucket, std::move(lookup), std::move(done), absl::Now()});
      return;
    }
  }
  done(refused, ossapi::ObjectFacts{});  // never under the lock
}

bool HeadObjectConfirmer::HasWorkOrStops() const { return stopping_ || !queue_.empty(); }

void HeadObjectConfirmer::Work() {
  const absl::Duration max_wait = options_.budget - options_.head_timeout;
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &HeadObjectConfirmer::HasWorkOrStops));
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    const absl::Duration waited = absl::Now() - task.queued;
    if (waited > max_wait) {
      task.done(absl::UnavailableError(absl::StrCat(
                    "OSS could not confirm the upload: waited ", absl::FormatDuration(waited),
                    " for a confirmation slot")),
                ossapi::ObjectFacts{});
      continue;
    }
    if (task.lookup) {
      if (absl::Status looked = task.lookup(); !looked.ok()) {
        task.done(std::move(looked), ossapi::ObjectFacts{});
        continue;
      }
    }
    absl::StatusOr<ossapi::ObjectFacts> held = probe_.Head(*task.bucket, task.object.key);
    absl::Status verdict;
    if (held.ok()) {
      verdict = CompareWithBucket(task.object, *held);
    } else if (held.status().code() == absl::StatusCode::kNotFound) {
      verdict = absl::NotFoundError(absl::StrCat("object: '", task.object.key, "' is not in bucket '",
                                                 task.object.bucket, "' (HeadObject: 404)"));
    } else {
      verdict = absl::UnavailableError(
          absl::StrCat("OSS could not confirm the upload: ", held.status().message()));
    }
    task.done(std::move(verdict), held.ok() ? *held : ossapi::ObjectFacts{});
  }
}

}  // namespace uploadbroker::ingest
