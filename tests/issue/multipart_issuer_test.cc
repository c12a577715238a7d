// How CreateMultipartUpload cuts an object into parts (PlanParts, PartSize):
// OSS's limits, the default part size, and what each refusal says.
#include "issue/multipart_issuer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::issue {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(PlanPartsTest, DefaultPartSizeIs8MiBWithAShorterLastPart) {
  absl::StatusOr<v1::MultipartPlan> plan = PlanParts(20 * kMiB + 5, 0);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->part_size(), 8 * kMiB);
  EXPECT_EQ(plan->part_count(), 3);
  EXPECT_EQ(PartSize(*plan, 1), 8 * kMiB);
  EXPECT_EQ(PartSize(*plan, 3), 4 * kMiB + 5);
}

TEST(PlanPartsTest, DefaultGrowsInWholeMiBToStayWithin10000Parts) {
  const int64_t total = int64_t{200} << 30;  // 200 GiB: 8 MiB parts would be 25,600
  absl::StatusOr<v1::MultipartPlan> plan = PlanParts(total, 0);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->part_size() % kMiB, 0);
  EXPECT_EQ(plan->part_size(), 21 * kMiB);
  EXPECT_LE(plan->part_count(), kMaxParts);
  EXPECT_EQ(PartSize(*plan, plan->part_count()),
            total - plan->part_size() * (plan->part_count() - 1));
}

TEST(PlanPartsTest, AnExactMultipleEndsWithAFullPart) {
  absl::StatusOr<v1::MultipartPlan> plan = PlanParts(3 * kMinPartSize, kMinPartSize);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->part_count(), 3);
  EXPECT_EQ(PartSize(*plan, 3), kMinPartSize);
}

TEST(PlanPartsTest, RefusalsNameTheFieldAndTheLimit) {
  EXPECT_THAT(PlanParts(0, 0).status().message(), HasSubstr("total_size: required"));
  EXPECT_THAT(PlanParts(kMiB, -1).status().message(), HasSubstr("part_size: must not be negative"));
  EXPECT_THAT(PlanParts(kMiB, kMinPartSize - 1).status().message(),
              HasSubstr("part_size: 102399 is below OSS's minimum of 102400 bytes"));
  EXPECT_THAT(PlanParts(kMaxPartSize + 1, kMaxPartSize + 1).status().message(),
              HasSubstr("part_size: 5368709121 is above OSS's maximum"));
  absl::Status too_many = PlanParts(10001 * kMinPartSize, kMinPartSize).status();
  EXPECT_EQ(too_many.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_many.message(),
              HasSubstr("cuts 1024102400 bytes into 10001 parts; OSS allows at most 10000 "
                        "(use at least 102411)"));
}

}  // namespace
}  // namespace uploadbroker::issue
