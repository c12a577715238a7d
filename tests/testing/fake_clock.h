// FakeClock: a common::Clock that only moves when the test sets or advances
// it. Thread-safe.
#ifndef UPLOADBROKER_TESTING_FAKE_CLOCK_H_
#define UPLOADBROKER_TESTING_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace uploadbroker::testing {

class FakeClock : public common::Clock {
 public:
  explicit FakeClock(absl::Time now) : now_(now) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Set(absl::Time now) {
    absl::MutexLock lock(&mu_);
    now_ = now;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTING_FAKE_CLOCK_H_
