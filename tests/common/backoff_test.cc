// common::Backoff, the one retry schedule: exponential from `initial`,
// capped at `max`, jittered symmetrically by the caller's draw.
#include "common/backoff.h"

#include "gtest/gtest.h"

namespace uploadbroker::common {
namespace {

TEST(Backoff, GrowsByTheMultiplierUpToTheCap) {
  Backoff b{absl::Milliseconds(100), 2.0, absl::Seconds(1), 0.0};
  EXPECT_EQ(b.Delay(0), absl::Milliseconds(100));
  EXPECT_EQ(b.Delay(1), absl::Milliseconds(200));
  EXPECT_EQ(b.Delay(3), absl::Milliseconds(800));
  EXPECT_EQ(b.Delay(4), absl::Seconds(1));
  EXPECT_EQ(b.Delay(1'000'000), absl::Seconds(1));
  EXPECT_EQ(b.Delay(-5), absl::Milliseconds(100));  // a negative attempt is the first
}

TEST(Backoff, JitterScalesWithinItsBoundsAndNeverGoesNegative) {
  Backoff b{absl::Seconds(1), 2.0, absl::Seconds(10), 0.25};
  EXPECT_EQ(b.Delay(0, 0.0), absl::Milliseconds(750));
  EXPECT_EQ(b.Delay(0, 0.5), absl::Seconds(1));
  EXPECT_LE(b.Delay(0, 0.999999), absl::Milliseconds(1250));
  EXPECT_GT(b.Delay(0, 0.999999), absl::Milliseconds(1249));
  b.jitter = 3.0;  // nonsense, but still no negative wait
  EXPECT_EQ(b.Delay(0, 0.0), absl::ZeroDuration());
}

}  // namespace
}  // namespace uploadbroker::common
