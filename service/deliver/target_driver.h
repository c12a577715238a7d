// TargetDriver: drives every push target of the config from this broker
// (issue 18, section 2). Per target it
//   1. ensures the target's subscription exists: owner = the target's
//      caller, name "target-<name>", the target's filter, ack deadline and
//      max attempts; created starting after the newest event at that
//      moment (a new target gets what happens from then on);
//   2. holds the target's lease (Ledger::ClaimTarget, `claim_lease`,
//      renewed every `claim_poll`): one broker drives a target at a time, and
//      a dead broker's target is taken within claim_poll of its lease
//      running out;
//   3. reads the log after the subscription's `scanned` position, filters it
//      (stream::EventFilter, the Subscribe filter), leases what matches
//      (LeaseEvents: due retries and expired leases first), converts each
//      event (cloud_event.h) and hands it to the Target;
//   4. acknowledges delivered events, nacks failed ones with
//      RetryDelay(attempt) (an event that failed its max_delivery_attempts-th
//      attempt becomes a dead letter), and disables a target that answers
//      kGone until the broker restarts (logged as an error, metric
//      upload_broker_target_disabled).
//
// Threads. The driver owns a small pool (`threads`) that runs each target's
// steps one at a time; the only blocking calls it makes there are ledger
// reads (GetSubscription, ReadEvents). Targets never block it (target.h),
// ledger writes are asynchronous and their callbacks only post work back to
// the pool. So a slow or dead target costs nothing but its own in-flight
// request; it never holds up another target, the callback path or Subscribe.
// Metrics (label `target`): upload_broker_target_attempts_total{result=
// delivered|failed|gone}, upload_broker_target_dead_letters_total,
// upload_broker_target_lag_events, upload_broker_target_lag_seconds,
// upload_broker_target_last_success_timestamp_seconds,
// upload_broker_target_driving (1 while this broker holds it),
// upload_broker_target_disabled. /readyz does not look at targets.
#ifndef UPLOADBROKER_DELIVER_TARGET_DRIVER_H_
#define UPLOADBROKER_DELIVER_TARGET_DRIVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/backoff.h"
#include "common/clock.h"
#include "config/config.h"
#include "deliver/target.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"
#include "stream/event_filter.h"

namespace uploadbroker::deliver {

// The retry schedule of push targets (docs/deliveries.md has the table):
// 5 s, 15 s, 45 s, 2.25 min, 6.75 min, 20 min, 1 h, 3 h, 6 h (capped), each
// +-20 %. With the default 10 attempts an event is dead about 10.5 hours
// after its first attempt.
inline constexpr common::Backoff kRetrySchedule{absl::Seconds(5), 3.0, absl::Hours(6), 0.2};

// The wait before the next attempt after attempt `attempt` (1 for the first)
// failed: the schedule's delay, or the target's Retry-After when that is
// longer (capped at the schedule's max). `u` is the jitter draw in [0, 1).
absl::Duration RetryDelay(int attempt, absl::Duration retry_after, double u);

// The subscription a target's events flow through.
ledger::SubscriptionKey TargetSubscriptionKey(const config::DeliveryTarget& target);

struct DriverOptions {
  // This broker's name in target leases (default: host/pid/random).
  std::string holder;
  absl::Duration claim_lease = absl::Seconds(15);
  absl::Duration claim_poll = absl::Seconds(3);
  // With nothing known to be due, each held target looks for expired leases
  // and due retries (one ledger read, one lease call when there is work) and
  // refreshes its lag metrics this often.
  absl::Duration idle_poll = absl::Seconds(5);
  int threads = 2;
  // Events read from the log per step.
  int read_batch = 256;
  // Most events leased ahead of delivery per target.
  int max_window = 256;
  // The jitter draw; default: a uniform random number generator.
  std::function<double()> random;
};

class TargetDriver {
 public:
  struct Driven {
    config::DeliveryTarget config;
    std::unique_ptr<Target> target;
    stream::EventFilter filter;
  };

  // `ledger`, `metrics` and `clock` must outlive the driver. Starts at once.
  TargetDriver(ledger::Ledger& ledger, metrics::Registry& metrics, const common::Clock& clock,
               std::string source, std::vector<Driven> targets, DriverOptions options = {});
  // Shutdown().
  ~TargetDriver();
  TargetDriver(const TargetDriver&) = delete;
  TargetDriver& operator=(const TargetDriver&) = delete;

  // Stops every target: no new attempt starts, attempts under way get up to
  // 3 s to finish and be acknowledged, targets are destroyed (no
  // outcome arrives after), leased events not yet attempted are handed back
  // (nacked at once) and the target leases are released so that another
  // broker takes over without waiting. Idempotent; any thread.
  void Shutdown();

  // Wakes every target now (tests that moved a FakeClock).
  void Poke();

  struct Stats {
    bool driving = false;
    bool disabled = false;
    int64_t delivered = 0;
    int64_t failed = 0;
    int64_t dead = 0;
  };
  Stats StatsOf(const std::string& target) const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_TARGET_DRIVER_H_
