#include "completion/completion.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::completion {
namespace {

using ::testing::HasSubstr;

v1::Upload Intent() {
  v1::Upload u;
  u.set_upload_id("up_1");
  u.set_state(v1::UPLOAD_STATE_PENDING);
  u.set_bucket("photos");
  u.set_key("uploads/a.png");
  u.set_min_size(1);
  u.set_max_size(1000);
  u.add_content_types("image/png");
  return u;
}

ReportedObject Object() {
  ReportedObject o;
  o.bucket = "photos";
  o.key = "uploads/a.png";
  o.size = 10;
  o.etag = "E1";
  o.content_type = "image/png";
  return o;
}

TEST(CheckAgainstIntentTest, ObjectInsideTheLimitsCompletes) {
  EXPECT_TRUE(CheckAgainstIntent(Object(), Intent()).ok());
}

TEST(CheckAgainstIntentTest, ContentTypeParametersAndCaseAreIgnored) {
  ReportedObject o = Object();
  o.content_type = "Image/PNG; charset=binary";
  EXPECT_TRUE(CheckAgainstIntent(o, Intent()).ok());
}

TEST(CheckAgainstIntentTest, EachLimitNamesItsField) {
  ReportedObject bucket = Object();
  bucket.bucket = "other";
  ReportedObject key = Object();
  key.key = "uploads/b.png";
  ReportedObject size = Object();
  size.size = 1001;
  ReportedObject type = Object();
  type.content_type = "text/plain";
  for (const auto& [o, field] : {std::pair{bucket, "bucket: "}, std::pair{key, "object: "},
                                 std::pair{size, "size: 1001 is outside [1, 1000]"},
                                 std::pair{type, "mimeType: "}}) {
    absl::Status st = CheckAgainstIntent(o, Intent());
    EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << field;
    EXPECT_THAT(st.message(), HasSubstr(field));
  }
}

TEST(CheckAgainstIntentTest, PrefixIntentTakesAnyKeyUnderIt) {
  v1::Upload prefix = Intent();
  prefix.set_key("uploads/");
  prefix.set_key_is_prefix(true);
  EXPECT_TRUE(CheckAgainstIntent(Object(), prefix).ok());
  ReportedObject outside = Object();
  outside.key = "other/a.png";
  EXPECT_THAT(CheckAgainstIntent(outside, prefix).message(),
              HasSubstr("is outside the intent's prefix"));
}

TEST(CheckAgainstIntentTest, SameObjectAgainIsAcceptedAndAnotherIsNot) {
  v1::Upload done = Intent();
  done.set_state(v1::UPLOAD_STATE_COMPLETED);
  *done.mutable_completion() = ToCompletion(Object(), v1::COMPLETION_SOURCE_CALLBACK);
  EXPECT_TRUE(CheckAgainstIntent(Object(), done).ok());
  ReportedObject second = Object();
  second.etag = "E2";
  absl::Status st = CheckAgainstIntent(second, done);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("already completed by object 'uploads/a.png'"));
}

TEST(CheckAgainstIntentTest, ExpiredIntentRefusesEvenAMatchingObject) {
  v1::Upload expired = Intent();
  expired.set_state(v1::UPLOAD_STATE_EXPIRED);
  absl::Status st = CheckAgainstIntent(Object(), expired);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("expired"));
}

TEST(ToCompletionTest, CarriesWhatOssReportedAndTheSource) {
  ReportedObject o = Object();
  o.crc64 = "123";
  o.content_md5 = "md5";
  o.image_height = "10";
  o.image_width = "20";
  o.image_format = "png";
  o.client_ip = "10.0.0.1";
  o.request_id = "req";
  o.operation = "PutObject";
  v1::Completion c = ToCompletion(o, v1::COMPLETION_SOURCE_RECONCILED);
  EXPECT_EQ(c.key(), "uploads/a.png");
  EXPECT_EQ(c.size(), 10);
  EXPECT_EQ(c.etag(), "E1");
  EXPECT_EQ(c.content_type(), "image/png");
  EXPECT_EQ(c.crc64(), "123");
  EXPECT_EQ(c.content_md5(), "md5");
  EXPECT_EQ(c.image_info().height(), "10");
  EXPECT_EQ(c.image_info().width(), "20");
  EXPECT_EQ(c.image_info().format(), "png");
  EXPECT_EQ(c.client_ip(), "10.0.0.1");
  EXPECT_EQ(c.request_id(), "req");
  EXPECT_EQ(c.operation(), "PutObject");
  EXPECT_EQ(c.source(), v1::COMPLETION_SOURCE_RECONCILED);
}

// A multipart intent is completed only by CompleteMultipartUpload, with an
// ETag of the planned part count; the count is recorded.
v1::Upload MultipartIntent() {
  v1::Upload u = Intent();
  u.set_method(v1::UPLOAD_METHOD_MULTIPART);
  u.mutable_multipart()->set_part_count(3);
  return u;
}

TEST(MultipartCompletionTest, PartCountOfReadsTheEtagSuffix) {
  EXPECT_EQ(PartCountOf("5B3C1A-3"), 3);
  EXPECT_EQ(PartCountOf("5B3C1A"), 0);
  EXPECT_EQ(PartCountOf("5B3C1A-"), 0);
  EXPECT_EQ(PartCountOf("5B3C1A-0"), 0);
  EXPECT_EQ(PartCountOf("5B3C1A-x"), 0);
}

TEST(MultipartCompletionTest, OnlyCompleteMultipartUploadOfThePlannedPartsCompletes) {
  ReportedObject o = Object();
  o.etag = "5B3C1A-3";
  o.operation = kCompleteMultipartUpload;
  EXPECT_TRUE(CheckAgainstIntent(o, MultipartIntent()).ok());

  ReportedObject put = o;
  put.operation = "PutObject";
  absl::Status st = CheckAgainstIntent(put, MultipartIntent());
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("operation: 'PutObject'"));

  ReportedObject two = o;
  two.etag = "5B3C1A-2";
  st = CheckAgainstIntent(two, MultipartIntent());
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("is not of 3 parts"));
}

TEST(MultipartCompletionTest, ToCompletionRecordsThePartCount) {
  ReportedObject o = Object();
  o.etag = "5B3C1A-3";
  o.operation = kCompleteMultipartUpload;
  EXPECT_EQ(ToCompletion(o, v1::COMPLETION_SOURCE_CALLBACK).part_count(), 3);
  o.operation = "PutObject";
  EXPECT_EQ(ToCompletion(o, v1::COMPLETION_SOURCE_CALLBACK).part_count(), 0);
}

}  // namespace
}  // namespace uploadbroker::completion
