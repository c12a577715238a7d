#include "common/oss_names.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::common {
namespace {

using ::testing::HasSubstr;

TEST(IsValidBucketName, FollowsOssRules) {
  for (const char* ok : {"abc", "photos", "my-bucket-1", "0ab"}) {
    EXPECT_TRUE(IsValidBucketName(ok)) << ok;
  }
  EXPECT_TRUE(IsValidBucketName(std::string(63, 'a')));
  for (const char* bad : {"", "ab", "-abc", "abc-", "Photos", "my_bucket", "a.b.c", "ab c"}) {
    EXPECT_FALSE(IsValidBucketName(bad)) << bad;
  }
  EXPECT_FALSE(IsValidBucketName(std::string(64, 'a')));
}

TEST(CheckObjectKey, AcceptsOrdinaryKeys) {
  for (const char* key : {"a", "uploads/", "uploads/cat.png", "uploads/фото 猫+%.txt", "a..b/c",
                          ".hidden", "uploads/.well-known/x", "dir/", "a/b..", "名前/ファイル"}) {
    EXPECT_TRUE(CheckObjectKey("key", key).ok()) << key << ": " << CheckObjectKey("key", key);
  }
}

struct BadKey {
  std::string key;
  std::string reason;
};

// Readable test names (the reason, not the struct's bytes).
void PrintTo(const BadKey& k, std::ostream* os) { *os << k.reason; }

class CheckObjectKeyRejects : public ::testing::TestWithParam<BadKey> {};

TEST_P(CheckObjectKeyRejects, NamingTheFieldAndTheReason) {
  absl::Status s = CheckObjectKey("key_prefix", GetParam().key);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << GetParam().key;
  EXPECT_THAT(s.message(), HasSubstr("key_prefix: " + GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    Keys, CheckObjectKeyRejects,
    ::testing::Values(
        BadKey{"", "must not be empty"}, BadKey{std::string(1024, 'a'), "longer than 1023 bytes"},
        BadKey{"/uploads/a", "must not start with '/'"}, BadKey{"\\uploads", "must not start with"},
        BadKey{"uploads//a", "contains '//'"}, BadKey{"uploads/a//", "contains '//'"},
        BadKey{"./a", "contains a '.' path segment"}, BadKey{"uploads/./a", "contains a '.' path segment"},
        BadKey{"uploads/../etc/passwd", "contains a '..' path segment"},
        BadKey{"uploads/..", "contains a '..' path segment"},  // a prefix's last segment counts
        BadKey{"uploads/.", "contains a '.' path segment"},
        BadKey{"uploads/a\x01", "contains a control character (U+0001)"},
        BadKey{"uploads/a\nb", "contains a control character (U+000A)"},
        BadKey{"uploads/a\x7f", "contains a control character (U+007F)"},
        BadKey{"uploads/a\xc2\x85", "contains a control character (U+0085)"},  // C1 NEL
        BadKey{"uploads/a\xc2\x9b", "contains a control character (U+009B)"},  // C1 CSI
        BadKey{"uploads/gnp.\xe2\x80\xae" "exe", "contains a bidirectional control character (U+202E)"},
        BadKey{"uploads/\xe2\x80\xaa", "contains a bidirectional control character (U+202A)"},
        BadKey{"uploads/\xe2\x81\xa6x", "contains a bidirectional control character (U+2066)"},
        BadKey{"uploads/\xe2\x81\xa9x", "contains a bidirectional control character (U+2069)"},
        BadKey{"uploads/\xff", "not valid UTF-8"}, BadKey{"uploads/\xc0\xaf", "not valid UTF-8"},
        BadKey{"uploads/\xed\xa0\x80", "not valid UTF-8"},
        // Dot segments in disguise (#17): each reads as '..' (or '.') to a
        // reader that takes '\' for '/', decodes percent escapes or
        // normalizes Unicode (NFKC).
        BadKey{"alpha/..\\..\\x", "contains a path segment that reads as '..'"},
        BadKey{"alpha\\..", "contains a path segment that reads as '..'"},
        BadKey{"alpha/.\\x", "contains a path segment that reads as '.'"},
        BadKey{"alpha/%2e%2e/x", "contains a path segment that reads as '..'"},
        BadKey{"alpha/%2E%2e/x", "contains a path segment that reads as '..'"},
        BadKey{"alpha/.%2E/x", "contains a path segment that reads as '..'"},
        BadKey{"alpha/%2e", "contains a path segment that reads as '.'"},
        BadKey{"alpha/..%2fx", "contains a path segment that reads as '..'"},
        BadKey{"alpha/..%5Cx", "contains a path segment that reads as '..'"},
        BadKey{"alpha%2f..%2fx", "contains a path segment that reads as '..'"},
        BadKey{"alpha/\xef\xbc\x8e\xef\xbc\x8e/x", "contains a path segment that reads as '..'"},  // U+FF0E U+FF0E
        BadKey{"alpha/.\xef\xbc\x8e/x", "contains a path segment that reads as '..'"},
        BadKey{"alpha/\xe2\x80\xa4\xe2\x80\xa4/x", "contains a path segment that reads as '..'"},  // U+2024 ONE DOT LEADER
        BadKey{"alpha/\xef\xb9\x92\xef\xb9\x92/x", "contains a path segment that reads as '..'"},  // U+FE52 SMALL FULL STOP
        BadKey{"alpha/\xe2\x80\xa5/x", "contains a path segment that reads as '..'"},                // U+2025 TWO DOT LEADER
        BadKey{"alpha/..\xef\xbc\x8fx", "contains a path segment that reads as '..'"},                // U+FF0F FULLWIDTH SOLIDUS
        BadKey{"alpha/..\xef\xbc\xbcx", "contains a path segment that reads as '..'"},                // U+FF3C FULLWIDTH REVERSE SOLIDUS
        BadKey{"alpha/..\xef\xb9\xa8x", "contains a path segment that reads as '..'"}));              // U+FE68 SMALL REVERSE SOLIDUS

TEST(CheckObjectKey, LookAlikesInsideANameArePlainCharacters) {
  // Only whole segments matter: these name files, not directories above.
  for (const char* key : {"alpha/a%2eb", "alpha/%2e%2e%2e", "alpha/%2", "alpha/%", "alpha/..a\\b",
                          "alpha/\xe2\x80\xa6", "alpha/x\xef\xbc\x8e\xef\xbc\x8e",
                          "alpha/100%25", "alpha/%2ex", "alpha\\b"}) {
    EXPECT_TRUE(CheckObjectKey("key", key).ok()) << key << ": " << CheckObjectKey("key", key);
  }
  // The field is named, for keys as for prefixes.
  EXPECT_THAT(CheckObjectKey("key", "alpha/..\\..\\x").message(), HasSubstr("key: contains"));
}

TEST(CheckObjectKey, HugeKeysOfLookAlikesAreRefusedByLengthFirst) {
  std::string huge;
  while (huge.size() < 4096) huge += "%2e";
  EXPECT_THAT(CheckObjectKey("key", huge).message(), HasSubstr("longer than 1023 bytes"));
  const std::string at_limit = "a/" + std::string(1014, 'x') + "/\xef\xbc\x8e";  // 1020 bytes
  EXPECT_THAT(CheckObjectKey("key", at_limit).message(), HasSubstr("reads as"));
}

TEST(CheckObjectKey, NeighboursOfTheBidiRangesPass) {
  EXPECT_TRUE(CheckObjectKey("key", "a\xe2\x80\xa9").ok());  // U+2029
  EXPECT_TRUE(CheckObjectKey("key", "a\xe2\x80\xaf").ok());  // U+202F
  EXPECT_TRUE(CheckObjectKey("key", "a\xe2\x81\xa5").ok());  // U+2065
  EXPECT_TRUE(CheckObjectKey("key", "a\xe2\x81\xaa").ok());  // U+206A
  EXPECT_TRUE(CheckObjectKey("key", "a\xc2\xa0").ok());      // U+00A0, after C1
}

}  // namespace
}  // namespace uploadbroker::common
