// Clock: the one source of wall-clock time, injected so tests control it.
//
// Implementations are thread-safe. RealClock reads the system clock; tests
// use testing::FakeClock (tests/testing/fake_clock.h), which only moves when
// the test moves it.
#ifndef UPLOADBROKER_COMMON_CLOCK_H_
#define UPLOADBROKER_COMMON_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace uploadbroker::common {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_CLOCK_H_
