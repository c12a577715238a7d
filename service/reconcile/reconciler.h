// Reconciler: settles intents whose callback never arrived.
//
// OSS never retries a failed callback (the broker was down, the network
// dropped it, the answer was late), so an upload can be stored in OSS while
// its intent stays PENDING. Every `interval`, the reconciler takes the intents
// still PENDING `grace` after they expired, oldest first, and asks OSS with
// HeadObject:
//   * the object is there, within the intent's limits, and written under
//     this authorization by completion::CheckWrittenUnder (the callback
//     path's rule: no earlier than the intent was created, less
//     `clock_skew`; no other upload's completion names the key; no later
//     authorization for the same key was issued before it was written):
//     COMPLETED with an UploadCompleted event whose completion has source
//     RECONCILED;
//   * no object, an older object, one outside the limits, or one another
//     upload accounts for: EXPIRED with an UploadExpired
//     event (so one object is never reported for two uploads);
//   * OSS did not answer usably: left PENDING and tried again next pass.
// A prefix authorization (key_is_prefix) names no object: only the uploader
// knew the full key. With a `lister`, the reconciler lists the prefix
// (ListObjectsV2, bounded) for the first object, in key order, written no
// earlier than the intent was created (less `clock_skew`) that no other
// upload accounts for (not another upload's completion, and no later
// exact-key authorization for it issued before it was written), and settles
// the intent on it as for an exact key (HeadObject, then the limits).
// Nothing found, or the listing cut short by its bound: EXPIRED. Without
// a lister a prefix authorization is expired unlooked. Each settlement is one ledger
// transaction that re-checks the intent, so a callback arriving meanwhile
// wins cleanly. Counts go to upload_broker_reconciled_total{result}.
//
// Thread-safe. Referenced objects must outlive the Reconciler.
#ifndef UPLOADBROKER_RECONCILE_RECONCILER_H_
#define UPLOADBROKER_RECONCILE_RECONCILER_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "completion/authorization.h"
#include "config/config.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"
#include "ossapi/list_objects.h"
#include "ossapi/multipart_client.h"
#include "ossapi/object_probe.h"

namespace uploadbroker::reconcile {

// The HeadObject client lives in ossapi/ (one for the reconciler and the
// callback path); these names keep the reconciler's code short.
using ossapi::ObjectFacts;
using ossapi::ObjectProbe;

class Reconciler {
 public:
  struct Options {
    absl::Duration interval = absl::Minutes(1);
    // How long after expiry an intent may still be completed by its callback:
    // OSS checks the policy when an upload starts, and a large upload can
    // take long to finish.
    absl::Duration grace = absl::Hours(1);
    int batch = 100;  // intents listed at a time
    // How far OSS's Last-Modified may trail the broker's clock.
    absl::Duration clock_skew = completion::kClockSkew;
    // Aborts the OSS upload of a multipart intent that expires unfinished,
    // so its parts stop being billed (not owned; null: left to OSS's
    // lifecycle rules).
    ossapi::MultipartClient* multipart = nullptr;
    // Lists a prefix authorization's prefix to settle it (not owned; null:
    // prefix authorizations expire without a look).
    ossapi::ObjectLister* lister = nullptr;
  };

  // What one pass did.
  struct Pass {
    int completed = 0;  // found in OSS
    int expired = 0;    // not found, or not the authorized upload
    int settled = 0;    // a callback settled it first
    int failed = 0;     // OSS or the ledger failed; still PENDING
  };

  Reconciler(const config::Config& config, ledger::Ledger& ledger, ObjectProbe& probe,
             metrics::Registry& metrics, const common::Clock& clock, Options options);
  ~Reconciler();  // Stop()
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Runs passes in the background: one now, then one every interval.
  void Start();
  // Ends the background passes once the intent in hand is settled; idempotent.
  void Stop();

  // Settles everything overdue now, a batch at a time, trying each intent
  // once; stops early after kMaxFailuresPerPass failures (OSS unreachable).
  // Not concurrently with itself.
  Pass RunOnce();

  static constexpr size_t kMaxFailuresPerPass = 1000;
  static constexpr int kMaxListedUploads = 10'000;

 private:
  enum class Outcome { kCompleted, kExpired, kSettled, kFailed };
  Outcome Settle(const v1::Upload& intent);
  // Settles a prefix authorization with options_.lister (reconciler_prefix.cc).
  Outcome SettlePrefix(const v1::Upload& intent, const config::Bucket& bucket);
  // Completes `intent` on what HeadObject found at `key`, by the callback
  // path's rules; Expire if the object is not the authorized upload.
  Outcome CompleteFromOss(const v1::Upload& intent, const std::string& key,
                          const ObjectFacts& facts);
  // Every other upload of the intent's bucket whose key (or prefix) starts
  // with `prefix`, any state, for completion::CheckWrittenUnder.
  // ResourceExhausted past kMaxListedUploads uploads.
  absl::StatusOr<std::vector<v1::Upload>> UploadsUnder(const v1::Upload& intent,
                                                       const std::string& prefix);
  Outcome Expire(const v1::Upload& intent, absl::string_view why);
  void Loop();
  bool Stopping() {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }

  const config::Config& config_;
  ledger::Ledger& ledger_;
  ObjectProbe& probe_;
  const common::Clock& clock_;
  const Options options_;
  metrics::Counter& results_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace uploadbroker::reconcile

#endif  // UPLOADBROKER_RECONCILE_RECONCILER_H_
