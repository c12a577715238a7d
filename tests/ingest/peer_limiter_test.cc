// PeerLimiter: the failure budget per source address (burst, refill,
// Retry-After), addresses grouped as documented, and a bounded map under a
// flood of addresses.
#include "ingest/peer_limiter.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace uploadbroker::ingest {
namespace {

PeerLimiter::Options Options(double per_second, double burst, size_t max_addresses) {
  PeerLimiter::Options o;
  o.per_second = per_second;
  o.burst = burst;
  o.max_addresses = max_addresses;
  return o;
}

TEST(PeerLimiter, FailuresUseTheBudgetWhichRefills) {
  testing::FakeClock clock(absl::FromUnixSeconds(1'700'000'000));
  PeerLimiter limiter(Options(2, 3, 100), &clock);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.Wait("198.51.100.7:1000"), absl::ZeroDuration());
    limiter.Charge("198.51.100.7:1000");
  }
  // Another port of the same address shares the bucket; another address not.
  EXPECT_EQ(limiter.Wait("198.51.100.7:2000"), absl::Milliseconds(500));
  EXPECT_EQ(limiter.Wait("198.51.100.8:1000"), absl::ZeroDuration());
  clock.Advance(absl::Milliseconds(500));
  EXPECT_EQ(limiter.Wait("198.51.100.7:1000"), absl::ZeroDuration());
  limiter.Charge("198.51.100.7:1000");
  EXPECT_GT(limiter.Wait("198.51.100.7:1000"), absl::ZeroDuration());
}

TEST(PeerLimiter, OneBucketPerIpv6Slash64) {
  EXPECT_EQ(PeerLimiter::AddressOf("2001:db8:1:2:aaaa::1:443"), "2001:db8:1:2::/64");
  EXPECT_EQ(PeerLimiter::AddressOf("2001:db8:1:2:bbbb:cccc:dddd:eeee:80"), "2001:db8:1:2::/64");
  EXPECT_EQ(PeerLimiter::AddressOf("[2001:db8:1:2::5]:80"), "2001:db8:1:2::/64");
  EXPECT_EQ(PeerLimiter::AddressOf("203.0.113.9:5555"), "203.0.113.9");
  EXPECT_EQ(PeerLimiter::AddressOf("garbage"), "garbage");
  EXPECT_EQ(PeerLimiter::AddressOf(""), "");
}

TEST(PeerLimiter, AFloodOfAddressesKeepsTheMapBounded) {
  testing::FakeClock clock(absl::FromUnixSeconds(1'700'000'000));
  PeerLimiter limiter(Options(1, 2, 50), &clock);
  limiter.Charge("192.0.2.1:1");
  limiter.Charge("192.0.2.1:1");
  for (int i = 0; i < 10'000; ++i) limiter.Charge(absl::StrCat("10.0.", i / 256, ".", i % 256, ":1"));
  // Still answers, and a spent bucket regains its tokens on time.
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(limiter.Wait("192.0.2.1:1"), absl::ZeroDuration());
}

}  // namespace
}  // namespace uploadbroker::ingest
