// ReplayCache: answers kept for their TTL, the oldest dropped when full.
#include "ingest/replay_cache.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace uploadbroker::ingest {
namespace {

ReplayCache::Options Options(size_t max_entries) {
  ReplayCache::Options o;
  o.max_entries = max_entries;
  o.ttl = absl::Minutes(10);
  return o;
}

http::Response Answer(int status, const std::string& body) {
  http::Response r;
  r.status = status;
  r.body = body;
  return r;
}

TEST(ReplayCache, AnswersARepeatWithinItsTtlOnly) {
  ReplayCache cache(Options(10));
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  cache.Remember("sig-a", Answer(200, "{\"a\":1}"), t0);
  ASSERT_TRUE(cache.Find("sig-a", t0 + absl::Minutes(9)).has_value());
  EXPECT_EQ(cache.Find("sig-a", t0 + absl::Minutes(9))->body, "{\"a\":1}");
  EXPECT_FALSE(cache.Find("sig-b", t0).has_value());
  EXPECT_FALSE(cache.Find("sig-a", t0 + absl::Minutes(10)).has_value());
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ReplayCache, StaysWithinItsBoundDroppingTheOldest) {
  ReplayCache cache(Options(100));
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  for (int i = 0; i < 10'000; ++i) {
    cache.Remember(absl::StrCat("sig-", i), Answer(409, "x"), t0 + absl::Milliseconds(i));
    ASSERT_LE(cache.size(), 100u);
  }
  EXPECT_FALSE(cache.Find("sig-0", t0 + absl::Seconds(10)).has_value());
  EXPECT_TRUE(cache.Find("sig-9999", t0 + absl::Seconds(10)).has_value());
  // Remembering a signature again replaces it, without growing.
  cache.Remember("sig-9999", Answer(200, "y"), t0 + absl::Seconds(11));
  EXPECT_EQ(cache.Find("sig-9999", t0 + absl::Seconds(11))->status, 200);
  EXPECT_EQ(cache.size(), 100u);
}

}  // namespace
}  // namespace uploadbroker::ingest
