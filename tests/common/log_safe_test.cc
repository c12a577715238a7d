#include "common/log_safe.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace uploadbroker::common {
namespace {

TEST(LogSafeTest, PlainTextIsUnchanged) {
  EXPECT_EQ(LogSafe("uploads/app/photo 1.png"), "uploads/app/photo 1.png");
  EXPECT_EQ(LogSafe("图片/фото.jpg"), "图片/фото.jpg");
  EXPECT_EQ(LogSafe(""), "");
}

TEST(LogSafeTest, LineBreaksAndControlsCannotForgeALine) {
  const std::string forged = LogSafe("a.png\n[2026-12-06 04:00:00.000] [info] upload forged\r\t\x1b[31m");
  EXPECT_EQ(forged.find('\n'), std::string::npos);
  EXPECT_EQ(forged.find('\r'), std::string::npos);
  EXPECT_EQ(forged,
            "a.png\\x0a[2026-12-06 04:00:00.000] [info] upload forged\\x0d\\x09\\x1b[31m");
  EXPECT_EQ(LogSafe(std::string("a\0b\x7f", 4)), "a\\x00b\\x7f");
}

TEST(LogSafeTest, QuotesAndBackslashesAreEscaped) {
  EXPECT_EQ(LogSafe(R"(k" level="error)"), R"(k\" level=\"error)");
  EXPECT_EQ(LogSafe(R"(a\x0a)"), R"(a\\x0a)");  // cannot pass for an escape
}

TEST(LogSafeTest, BidiAndInvisibleControlsAreEscaped) {
  EXPECT_EQ(LogSafe("evil\u202Egnp.exe"), "evil\\u202egnp.exe");
  EXPECT_EQ(LogSafe("\u2066x\u2069\u200F\u061C\u2028\uFEFF"),
            "\\u2066x\\u2069\\u200f\\u061c\\u2028\\ufeff");
  EXPECT_EQ(LogSafe("\u0085"), "\\u0085");  // C1 NEL, a line break to some
}

TEST(LogSafeTest, InvalidUtf8BecomesHexBytes) {
  EXPECT_EQ(LogSafe("a\xff\xfe"), "a\\xff\\xfe");
  EXPECT_EQ(LogSafe("\xc0\xaf"), "\\xc0\\xaf");          // overlong '/'
  EXPECT_EQ(LogSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(LogSafe("\xe4\xb8"), "\\xe4\\xb8");          // truncated
}

TEST(LogSafeTest, LongTextIsCutOnACharacterBoundaryWithAMarker) {
  EXPECT_EQ(LogSafe(std::string(300, 'k')), std::string(256, 'k') + "...[44 more bytes]");
  EXPECT_EQ(LogSafe("abcdef", 3), "abc...[3 more bytes]");
  // "é" is two bytes: it does not fit in the third and fourth of 3.
  EXPECT_EQ(LogSafe("ab\xc3\xa9z", 3), "ab...[3 more bytes]");
  const std::string huge(10 << 20, '\n');
  EXPECT_LT(LogSafe(huge).size(), 256 * 4 + 32);
}

TEST(LogSafeTest, StatusesAreEscapedWithTheirCode) {
  EXPECT_EQ(LogSafeStatus(absl::InvalidArgumentError("key 'a\nb'")),
            "INVALID_ARGUMENT: key 'a\\x0ab'");
}

TEST(LogRateLimiterTest, AdmitsPerSecondAndCountsTheRest) {
  testing::FakeClock clock(absl::FromUnixSeconds(1000));
  LogRateLimiter limiter(3, &clock);
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Admit(&suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 997; ++i) EXPECT_FALSE(limiter.Admit(&suppressed));
  clock.Advance(absl::Milliseconds(999));
  EXPECT_FALSE(limiter.Admit(&suppressed));
  clock.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(limiter.Admit(&suppressed));
  EXPECT_EQ(suppressed, 998u);
  ASSERT_TRUE(limiter.Admit(&suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace uploadbroker::common
