#include "auth/identity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::auth {
namespace {

Identity App() {
  Identity id;
  id.name = "app";
  id.scope.buckets = {"photos", "docs"};
  id.scope.key_prefixes = {"uploads/app/", "shared/"};
  return id;
}

TEST(ScopeTest, BucketOutsideTheScopeIsDeniedByName) {
  EXPECT_TRUE(CheckBucket(App(), "docs").ok());
  absl::Status st = CheckBucket(App(), "private");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "bucket: caller 'app' may not upload to bucket 'private'");
}

TEST(ScopeTest, KeyMustStartWithAnAllowedPrefix) {
  EXPECT_TRUE(CheckKey(App(), "uploads/app/a.png", false).ok());
  EXPECT_TRUE(CheckKey(App(), "shared/x", false).ok());
  absl::Status st = CheckKey(App(), "uploads/other/a.png", false);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "key: 'uploads/other/a.png' is outside caller 'app' allowed prefixes");
}

TEST(ScopeTest, PrefixShorterThanTheAllowedOneWouldLeaveTheScope) {
  absl::Status st = CheckKey(App(), "uploads/", true);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "key_prefix: 'uploads/' is outside caller 'app' allowed prefixes");
  EXPECT_TRUE(CheckKey(App(), "uploads/app/photos/", true).ok());
}

TEST(ScopeTest, NoPrefixesMeansAnyKeyInTheBuckets) {
  Identity admin;
  admin.name = "admin";
  admin.scope.buckets = {"photos"};
  EXPECT_TRUE(InScope(admin, "photos", "anything/at/all"));
  EXPECT_FALSE(InScope(admin, "docs", "anything/at/all"));
  EXPECT_FALSE(InScope(App(), "photos", "elsewhere/a"));
}

}  // namespace
}  // namespace uploadbroker::auth
