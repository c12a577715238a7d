// Confirmer: before a callback completes an intent, checks with OSS that the
// object it reports is really in our bucket as reported.
//
// Why: OSS signs every callback with one global key and nothing in the
// signature names the account or bucket, so a callback can describe an
// object some other account uploaded to its own bucket (docs/security.md,
// "Completions"). A signed HeadObject on the configured bucket the callback
// names proves the object exists there with the reported size, ETag and
// content type.
//
// Confirm() never blocks: it queues the HEAD on a small pool the confirmer
// owns and calls `done` exactly once, from a pool thread (or the calling
// thread when it refuses at once), with:
//   OK                  the bucket holds the object as reported;
//   PermissionDenied    the bucket is not one in the config;
//   NotFound            the bucket has no such object;
//   FailedPrecondition  it holds the key with another size, ETag or type
//                       (the message names the field and both values);
//   Unavailable         OSS could not confirm in time (unreachable, 5xx,
//                       slow) — the caller should answer 503 and leave the
//                       intent to the reconciler;
//   ResourceExhausted   the queue is full (also a 503 to OSS).
// The whole answer takes at most about `budget` (queue wait included), well
// inside OSS's 5 s callback timeout.
//
// Thread-safe. Shutdown() (also run by the destructor) answers what is still
// queued with Unavailable and joins the pool; `done` must not destroy the
// confirmer. The probe and config must outlive it.
#ifndef UPLOADBROKER_INGEST_CONFIRMER_H_
#define UPLOADBROKER_INGEST_CONFIRMER_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "completion/completion.h"
#include "config/config.h"
#include "ossapi/object_probe.h"

namespace uploadbroker::ingest {

class Confirmer {
 public:
  virtual ~Confirmer() = default;
  virtual void Confirm(const completion::ReportedObject& object,
                       std::function<void(absl::Status)> done) = 0;
};

class HeadObjectConfirmer final : public Confirmer {
 public:
  struct Options {
    // HEADs in flight at once. A HEAD mostly waits on OSS, so the pool caps
    // confirmations at threads / HEAD latency (32 / 5 ms = 6,400/s), above
    // what the ledger commits; the threads cost a stack each, no CPU.
    int threads = 32;
    int max_queue = 1024;    // waiting beyond this: ResourceExhausted
    absl::Duration budget = absl::Seconds(2);
    // Time the HEAD itself may take (the probe's timeout); a request that
    // waited longer than budget - head_timeout in the queue is answered
    // Unavailable without a HEAD.
    absl::Duration head_timeout = absl::Milliseconds(1500);
  };

  HeadObjectConfirmer(const config::Config& config, ossapi::ObjectProbe& probe, Options options);
  ~HeadObjectConfirmer() override;

  void Confirm(const completion::ReportedObject& object,
               std::function<void(absl::Status)> done) override;
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Task {
    completion::ReportedObject object;
    const config::Bucket* bucket = nullptr;
    std::function<void(absl::Status)> done;
    absl::Time queued;
  };
  void Work() ABSL_LOCKS_EXCLUDED(mu_);
  bool HasWorkOrStops() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const config::Config& config_;
  ossapi::ObjectProbe& probe_;
  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

// Compares what a callback reports with what HeadObject found: size, ETag
// (quotes ignored, case-insensitive) and content type (case-insensitive).
// OK or FailedPrecondition naming the field and both values.
absl::Status CompareWithBucket(const completion::ReportedObject& reported,
                               const ossapi::ObjectFacts& held);

}  // namespace uploadbroker::ingest

#endif  // UPLOADBROKER_INGEST_CONFIRMER_H_
