// Target: where a push subscription's events go (a webhook, a NATS
// JetStream subject). The target driver (deliver/) leases events from the
// ledger, converts them (cloud_event.h), hands them to Deliver, and turns
// the outcome into an ack, a nack with a backoff, or a disabled target.
//
// Threads: the driver calls Deliver with at most max_in_flight() calls
// outstanding; Deliver must not block on the network (it starts the
// attempt and returns) and calls `done` exactly once, on any thread,
// without holding a lock the driver could need. After the destructor
// starts, no `done` runs (the destructor waits for or cancels them).
#ifndef UPLOADBROKER_DELIVER_TARGET_H_
#define UPLOADBROKER_DELIVER_TARGET_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "deliver/cloud_event.h"

namespace uploadbroker::deliver {

struct AttemptOutcome {
  enum Kind {
    kDelivered,  // the target took every event: ack them
    kFailed,     // retry later (timeout, refused, 5xx, no JetStream ack ...)
    kGone,       // the target says never again (webhook 410): disable it
  };
  Kind kind = kFailed;
  // For kFailed/kGone: short, log-safe, kept with the attempt
  // ("target answered 503", "timed out after 10s", "connection refused").
  std::string reason;
  // The target's own hint (a Retry-After header); zero when none.
  absl::Duration retry_after = absl::ZeroDuration();
};

class Target {
 public:
  virtual ~Target() = default;
  // Most events per Deliver call: 1 unless the target is configured for
  // batches.
  virtual int max_batch() const = 0;
  // Most Deliver calls outstanding at once.
  virtual int max_in_flight() const = 0;
  // One attempt for `events` (cursor order): all of them are delivered or
  // none is.
  virtual void Deliver(std::vector<CloudEvent> events,
                       std::function<void(AttemptOutcome)> done) = 0;
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_TARGET_H_
