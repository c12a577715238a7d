// completion::CheckWrittenUnder: the rule that ties an object to the
// authorization it completes, for callbacks and the reconciler alike.
#include "completion/authorization.h"

#include <vector>

#include "absl/strings/ascii.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::completion {
namespace {

using ::testing::HasSubstr;

const absl::Time kIssued = absl::FromUnixSeconds(1'700'000'000);
// The ETag of the object the tests look at (as HeadObject reports it).
constexpr char kEtag[] = "5EB63BBBE01EEED093CB22BB8F5ACDC3";

v1::Upload Intent(const std::string& id, const std::string& key, absl::Time created,
                  bool prefix = false) {
  v1::Upload u;
  u.set_upload_id(id);
  u.set_state(v1::UPLOAD_STATE_PENDING);
  u.set_bucket("photos");
  u.set_key(key);
  u.set_key_is_prefix(prefix);
  u.mutable_created_at()->set_seconds(absl::ToUnixSeconds(created));
  u.mutable_created_at()->set_nanos(250'000'000);
  return u;
}

v1::Upload Completed(v1::Upload u, const std::string& key) {
  u.set_state(v1::UPLOAD_STATE_COMPLETED);
  u.mutable_completion()->set_key(key);
  u.mutable_completion()->set_etag(kEtag);
  return u;
}

TEST(CheckWrittenUnder, AnObjectWrittenAfterTheAuthorizationIsItsUpload) {
  v1::Upload intent = Intent("up_1", "uploads/a.png", kIssued);
  EXPECT_TRUE(CheckWrittenUnder(intent, "uploads/a.png", kEtag, kIssued + absl::Seconds(3), {}).ok());
  // Within the documented skew (Last-Modified may trail our clock).
  EXPECT_TRUE(CheckWrittenUnder(intent, "uploads/a.png", kEtag, kIssued - kClockSkew, {}).ok());
}

TEST(CheckWrittenUnder, AnObjectOlderThanTheAuthorizationIsNot) {
  v1::Upload intent = Intent("up_1", "uploads/a.png", kIssued);
  absl::Status st = CheckWrittenUnder(intent, "uploads/a.png", kEtag, kIssued - kClockSkew - absl::Seconds(1), {});
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("before the authorization"));
  // No Last-Modified at all proves nothing.
  EXPECT_FALSE(CheckWrittenUnder(intent, "uploads/a.png", kEtag, absl::InfinitePast(), {}).ok());
  // A prefix authorization the same, at the key the object was found at.
  v1::Upload prefix = Intent("up_2", "uploads/", kIssued, true);
  EXPECT_FALSE(CheckWrittenUnder(prefix, "uploads/old.png", kEtag, kIssued - absl::Hours(1), {}).ok());
  EXPECT_TRUE(CheckWrittenUnder(prefix, "uploads/new.png", kEtag, kIssued + absl::Seconds(1), {}).ok());
}

TEST(CheckWrittenUnder, AnObjectAnotherUploadCompletedWithIsNot) {
  // The first authorization completed the key; a second one for the same
  // key, issued within the skew of that write, must not take its object.
  const absl::Time written = kIssued - absl::Seconds(1);
  v1::Upload first = Completed(Intent("up_1", "uploads/a.png", kIssued - absl::Seconds(2)), "uploads/a.png");
  first.mutable_completion()->mutable_completed_at()->set_seconds(absl::ToUnixSeconds(written) + 1);
  v1::Upload second = Intent("up_2", "uploads/a.png", kIssued);
  std::vector<v1::Upload> others = {first};
  absl::Status st = CheckWrittenUnder(second, "uploads/a.png", kEtag, written, others);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("up_1 completed with this key"));
  // A prefix authorization completed with that key counts as well, and so
  // does a completion whose time is unknown.
  v1::Upload by_prefix = Completed(Intent("up_3", "uploads/", kIssued, true), "uploads/b.png");
  EXPECT_FALSE(CheckNotClaimedByOther(second, "uploads/b.png", kEtag, written, {by_prefix}).ok());
  // Its own completion, another bucket, or another key do not.
  v1::Upload elsewhere = first;
  elsewhere.set_bucket("other");
  EXPECT_TRUE(CheckNotClaimedByOther(first, "uploads/a.png", kEtag, written, {first, elsewhere}).ok());
  EXPECT_TRUE(CheckNotClaimedByOther(second, "uploads/c.png", kEtag, written, others).ok());
}

TEST(CheckWrittenUnder, AnOverwriteAfterTheOtherCompletionWasRecordedMayBeThisOnes) {
  // allow_overwrite: the first upload completed an hour ago; the second
  // authorization's object replaced it since.
  v1::Upload first = Completed(Intent("up_1", "uploads/a.png", kIssued - absl::Hours(1)), "uploads/a.png");
  first.mutable_completion()->mutable_completed_at()->set_seconds(absl::ToUnixSeconds(kIssued - absl::Hours(1)));
  v1::Upload second = Intent("up_2", "uploads/a.png", kIssued);
  EXPECT_TRUE(CheckWrittenUnder(second, "uploads/a.png", kEtag, kIssued + absl::Seconds(20), {first}).ok());
  // Its old object, though, is not.
  EXPECT_FALSE(CheckWrittenUnder(second, "uploads/a.png", kEtag, kIssued - absl::Hours(1), {first}).ok());
}

TEST(CheckWrittenUnder, AnObjectALaterAuthorizationWasIssuedBeforeIsThatOnes) {
  v1::Upload mine = Intent("up_1", "uploads/a.png", kIssued);
  v1::Upload later = Intent("up_2", "uploads/a.png", kIssued + absl::Seconds(30));
  const absl::Time written = kIssued + absl::Seconds(60);
  absl::Status st = CheckWrittenUnder(mine, "uploads/a.png", kEtag, written, {later});
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("later authorization"));
  // For the later one, the earlier authorization does not count.
  EXPECT_TRUE(CheckWrittenUnder(later, "uploads/a.png", kEtag, written, {mine}).ok());
  // A later authorization issued after the write does not either.
  EXPECT_TRUE(CheckWrittenUnder(mine, "uploads/a.png", kEtag, kIssued + absl::Seconds(10), {later}).ok());
}


TEST(CheckWrittenUnder, AnOverwriteWithinTheSkewIsNotTheOtherCompletionsObject) {
  // allow_overwrite within seconds of the first completion: Last-Modified
  // cannot tell the two writes apart, the ETag can.
  v1::Upload first = Completed(Intent("up_1", "uploads/a.png", kIssued - absl::Seconds(2)), "uploads/a.png");
  first.mutable_completion()->mutable_completed_at()->set_seconds(absl::ToUnixSeconds(kIssued));
  v1::Upload second = Intent("up_2", "uploads/a.png", kIssued);
  const absl::Time written = kIssued + absl::Seconds(1);
  EXPECT_TRUE(CheckWrittenUnder(second, "uploads/a.png", "\"0CC175B9C0F1B6A831C399E269772661\"",
                                written, {first}).ok());
  // The same bytes again, or an ETag nobody reported, stay the first one's.
  EXPECT_FALSE(CheckWrittenUnder(second, "uploads/a.png", absl::AsciiStrToLower(kEtag), written, {first}).ok());
  EXPECT_FALSE(CheckWrittenUnder(second, "uploads/a.png", "", written, {first}).ok());
}

}  // namespace
}  // namespace uploadbroker::completion
