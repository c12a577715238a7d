// Backoff: the one schedule of retry delays (exponential, capped, with
// jitter), shared by everything that retries.
//
// A value type; Delay is a pure function, safe from any thread. The caller
// supplies the uniform random draw so that tests can fix it.
#ifndef UPLOADBROKER_COMMON_BACKOFF_H_
#define UPLOADBROKER_COMMON_BACKOFF_H_

#include <algorithm>
#include <cmath>

#include "absl/time/time.h"

namespace uploadbroker::common {

struct Backoff {
  absl::Duration initial = absl::Milliseconds(100);
  double multiplier = 2.0;
  absl::Duration max = absl::Seconds(5);
  // Each delay is scaled by a factor drawn from [1 - jitter, 1 + jitter].
  double jitter = 0.0;

  // The delay before retry `attempt` (0 for the first retry), with `u` a
  // uniform draw from [0, 1): initial * multiplier^attempt, capped at max,
  // then jittered. Never negative.
  absl::Duration Delay(int attempt, double u = 0.5) const {
    double base = absl::ToDoubleSeconds(initial) * std::pow(multiplier, std::clamp(attempt, 0, 64));
    base = std::min(base, absl::ToDoubleSeconds(max));
    double factor = 1.0 + jitter * (2.0 * u - 1.0);
    return absl::Seconds(std::max(0.0, base * factor));
  }
};

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_BACKOFF_H_
