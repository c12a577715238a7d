#include "policy/time_format.h"

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

}  // namespace
}  // namespace uploadbroker::policy
