#include "policy/time_format.h"

#include <vector>

#include "gtest/gtest.h"
#include "vectors.h"

namespace uploadbroker::policy {
namespace {

using testing::ParseIso;

TEST(TimeFormat, FormatsTheVectorClock) {
  absl::Time t = ParseIso("2025-01-02T03:04:05Z");
  EXPECT_EQ(Iso8601Millis(t), "2025-01-02T03:04:05.000Z");
  EXPECT_EQ(Iso8601Millis(t + absl::Hours(1)), "2025-01-02T04:04:05.000Z");
  EXPECT_EQ(V4DateTime(t), "20250102T030405Z");
  EXPECT_EQ(V4Date(t), "20250102");
}

TEST(TimeFormat, KeepsMillisecondsAndTruncatesElsewhere) {
  absl::Time t = ParseIso("2025-12-31T23:59:59Z") + absl::Milliseconds(987) +
                 absl::Microseconds(654);
  EXPECT_EQ(Iso8601Millis(t), "2025-12-31T23:59:59.987Z");
  EXPECT_EQ(V4DateTime(t), "20251231T235959Z");
  EXPECT_EQ(V4Date(t), "20251231");
}

TEST(TimeFormat, IsUtcRegardlessOfOffsetInInput) {
  absl::Time t = ParseIso("2025-01-02T01:30:00+08:00");
  EXPECT_EQ(V4DateTime(t), "20250101T173000Z");
  EXPECT_EQ(V4Date(t), "20250101");
}

// The fixed layouts are written field by field; absl::FormatTime is the
// oracle, over instants spread across four centuries and around midnight,
// month, leap-day and year boundaries.
TEST(TimeFormat, AgreesWithAbslFormatTime) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  std::vector<absl::Time> times;
  for (int64_t i = -2000; i < 20000; ++i) {  // 1926 to 2370, a week apart
    times.push_back(absl::FromUnixMillis(i * 631152007 + (i * 7919) % 1000));
  }
  times.push_back(absl::FromCivil(absl::CivilSecond(12000, 1, 1, 0, 0, 0), utc));
  for (const char* edge : {"2024-02-29T23:59:59.999Z", "2100-03-01T00:00:00.001Z",
                           "1999-12-31T23:59:59.500Z", "2000-01-01T00:00:00Z"}) {
    absl::Time t = ParseIso(edge);
    for (int ms : {-1001, -1, 0, 1, 999}) times.push_back(t + absl::Milliseconds(ms));
  }
  for (absl::Time t : times) {
    ASSERT_EQ(Iso8601Millis(t), absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, utc)) << t;
    ASSERT_EQ(V4DateTime(t), absl::FormatTime("%Y%m%dT%H%M%SZ", t, utc)) << t;
    ASSERT_EQ(V4Date(t), absl::FormatTime("%Y%m%d", t, utc)) << t;
  }
}

}  // namespace
}  // namespace uploadbroker::policy
