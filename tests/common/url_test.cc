#include "common/url.h"

#include "gtest/gtest.h"

namespace uploadbroker::common {
namespace {

TEST(ParseUrl, TakesTheUrlApart) {
  absl::StatusOr<Url> u = ParseUrl(
      "https://h.example.com/oss/callback?src=oss#frag", DotSegments::kKeep);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "h.example.com");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->path, "/oss/callback");
  EXPECT_EQ(u->query, "src=oss");
}

TEST(ParseUrl, PathDefaultsToSlash) {
  absl::StatusOr<Url> u = ParseUrl("http://h:8080", DotSegments::kKeep);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->path, "/");
  EXPECT_EQ(u->query, "");
}

TEST(ParseUrl, PathStaysPercentEncoded) {
  absl::StatusOr<Url> u = ParseUrl("http://h/a%20b#frag", DotSegments::kKeep);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->path, "/a%20b");
}

TEST(ParseUrl, DotSegmentsKeptOrResolved) {
  EXPECT_EQ(ParseUrl("http://h/a/../b", DotSegments::kKeep)->path, "/a/../b");
  EXPECT_EQ(ParseUrl("http://h/a/../b", DotSegments::kResolve)->path, "/b");
}

TEST(ParseUrl, NotAUrlIsInvalidArgument) {
  absl::StatusOr<Url> u = ParseUrl("http://", DotSegments::kKeep);
  EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUrl("/relative/path", DotSegments::kKeep).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace uploadbroker::common
