#include "common/encoding.h"

#include "gtest/gtest.h"

namespace uploadbroker::common {
namespace {

TEST(Base64, RoundTripsEveryPaddingLength) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x10"}) {
    auto decoded = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, s);
  }
  EXPECT_EQ(Base64Encode("abcd"), "YWJjZA==");
}

TEST(Base64, RejectsMalformedInput) {
  EXPECT_FALSE(Base64Decode("YWJjZA=").ok());   // length
  EXPECT_FALSE(Base64Decode("YW Jj").ok());     // whitespace
  EXPECT_FALSE(Base64Decode("YW=jZA==").ok());  // padding inside
  EXPECT_FALSE(Base64Decode("YWJj-A==").ok());  // url alphabet
}

TEST(UriEncode, KeepsUnreservedAndOptionallySlash) {
  EXPECT_EQ(UriEncode("a b/c+~", true), "a%20b/c%2B~");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("\xe7\x94\xa8", true), "%E7%94%A8");
}

TEST(PercentDecode, DecodesAndRejectsBadEscapes) {
  EXPECT_EQ(*PercentDecode("a%2Fb+c", false), "a/b+c");
  EXPECT_EQ(*PercentDecode("a%2fb+c", true), "a/b c");
  EXPECT_FALSE(PercentDecode("abc%2", false).ok());
  EXPECT_FALSE(PercentDecode("abc%", false).ok());
  EXPECT_FALSE(PercentDecode("%zz", false).ok());
}

}  // namespace
}  // namespace uploadbroker::common
