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
// Confirm() never blocks: it queues the work on a small pool the confirmer
// owns. On a pool thread it first runs `lookup` (the caller's ledger read:
// whether the callback could complete an intent at all); only when that
// returns OK does it send the HEAD. It calls `done` exactly once, from a
// pool thread (or the calling thread when it refuses at once), with:
//   whatever `lookup` returned, when not OK (no HEAD was sent);
//   OK                  the bucket holds the object as reported (`facts`
//                       is what HeadObject said, Last-Modified included);
//   PermissionDenied    the bucket is not one in the config (no lookup,
//                       no HEAD);
//   NotFound            the bucket has no such object;
//   FailedPrecondition  it holds the key with another size, ETag or type
//                       (the message names the field and both values: for
//                       the log, never for the sender);
//   Unavailable         OSS could not confirm in time (unreachable, 5xx,
//                       slow) — the caller should answer 503 and leave the
//                       intent to the reconciler;
//   ResourceExhausted   the queue is full (also a 503 to OSS).
// `facts` is meaningful only with OK. The whole answer takes at most about
// `budget` (queue wait and lookup included), well inside OSS's 5 s callback
// timeout. Each call sends at most one HEAD; the caller decides how many
// calls run (CallbackHandler: one per upload at a time).
//
// Thread-safe. Shutdown() (also run by the destructor) answers what is still
// queued with Unavailable and joins the pool; `lookup` and `done` must not
// destroy the confirmer. The probe and config must outlive it.
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
  using Lookup = std::function<absl::Status()>;
  using Done = std::function<void(absl::Status, const ossapi::ObjectFacts& facts)>;
  virtual void Confirm(const completion::ReportedObject& object, Lookup lookup, Done done) = 0;
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

  void Confirm(const completion::ReportedObject& object, Lookup lookup, Done done) override;
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Task {
    completion::ReportedObject object;
    const config::Bucket* bucket = nullptr;
    Lookup lookup;
    Done done;
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
