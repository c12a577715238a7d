#include "deliver/cloud_event.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::deliver {
namespace {

v1::Event Completed(uint64_t cursor) {
  v1::Event e;
  e.set_cursor(cursor);
  e.set_type(v1::EVENT_TYPE_UPLOAD_COMPLETED);
  e.mutable_committed_at()->set_seconds(1765000000);
  e.mutable_committed_at()->set_nanos(123456000);
  v1::Upload* u = e.mutable_upload_completed()->mutable_upload();
  u->set_upload_id("u-1");
  u->set_bucket("photos");
  u->set_key("uploads/intended.png");
  u->mutable_completion()->set_key("uploads/a \"quoted\" \xE2\x9C\x93.png");
  (*u->mutable_metadata())["k"] = "v";
  return e;
}

TEST(ToCloudEvent, CompletedUploadHasEveryAttribute) {
  auto ce = ToCloudEvent(Completed(42), "urn:test");
  ASSERT_TRUE(ce.ok()) << ce.status();
  EXPECT_EQ(ce->id, "u-1.completed");
  EXPECT_EQ(ce->source, "urn:test");
  EXPECT_EQ(ce->type, "com.uploadbroker.upload.completed");
  EXPECT_EQ(ce->subject, "uploads/a \"quoted\" \xE2\x9C\x93.png");  // the key OSS stored
  EXPECT_EQ(ce->sequence, 42u);
  EXPECT_EQ(ce->time, absl::FromUnixMicros(1765000000123456));
  EXPECT_EQ(ce->datacontenttype, "application/json");

  nlohmann::json j = nlohmann::json::parse(StructuredJson(*ce));
  EXPECT_EQ(j["specversion"], "1.0");
  EXPECT_EQ(j["id"], "u-1.completed");
  EXPECT_EQ(j["subject"], "uploads/a \"quoted\" \xE2\x9C\x93.png");
  EXPECT_EQ(j["time"], "2025-12-06T05:46:40.123456Z");
  EXPECT_EQ(j["sequence"], "42");  // the extension is a string
  // data: the Event in protobuf's JSON mapping (uint64 as a string, camelCase).
  EXPECT_EQ(j["data"]["cursor"], "42");
  EXPECT_EQ(j["data"]["type"], "EVENT_TYPE_UPLOAD_COMPLETED");
  EXPECT_EQ(j["data"]["uploadCompleted"]["upload"]["uploadId"], "u-1");
  EXPECT_EQ(j["data"]["uploadCompleted"]["upload"]["metadata"]["k"], "v");
}

TEST(ToCloudEvent, ExpiredUploadNamesTheIntendedKey) {
  v1::Event e;
  e.set_cursor(7);
  e.set_type(v1::EVENT_TYPE_UPLOAD_EXPIRED);
  e.mutable_upload_expired()->mutable_upload()->set_upload_id("u-2");
  e.mutable_upload_expired()->mutable_upload()->set_key("uploads/b.png");
  auto ce = ToCloudEvent(e, "");
  ASSERT_TRUE(ce.ok()) << ce.status();
  EXPECT_EQ(ce->id, "u-2.expired");
  EXPECT_EQ(ce->type, "com.uploadbroker.upload.expired");
  EXPECT_EQ(ce->subject, "uploads/b.png");
  EXPECT_EQ(ce->source, kDefaultSource);
  EXPECT_EQ(nlohmann::json::parse(StructuredJson(*ce))["time"], "1970-01-01T00:00:00Z");
}

TEST(ToCloudEvent, EventWithoutPayloadIsInvalid) {
  v1::Event e;
  e.set_cursor(9);
  auto ce = ToCloudEvent(e, "urn:x");
  EXPECT_EQ(ce.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ce.status().message(), ::testing::HasSubstr("event 9"));
}

TEST(ToCloudEvent, SameEventSameIdOnEveryConversion) {
  EXPECT_EQ(ToCloudEvent(Completed(1), "a")->id, ToCloudEvent(Completed(1), "b")->id);
}

TEST(BatchJson, IsAnArrayOfStructuredEvents) {
  std::vector<CloudEvent> events = {*ToCloudEvent(Completed(1), "s"), *ToCloudEvent(Completed(2), "s")};
  nlohmann::json j = nlohmann::json::parse(BatchJson(events));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["sequence"], "1");
  EXPECT_EQ(j[1]["sequence"], "2");
  EXPECT_EQ(j[1], nlohmann::json::parse(StructuredJson(events[1])));
  EXPECT_EQ(BatchJson({}), "[]");
}

TEST(StructuredJson, InvalidUtf8InAttributesStillGivesValidJson) {
  CloudEvent ce = *ToCloudEvent(Completed(3), "s");
  ce.subject = "bad\xFF\xFEkey";
  EXPECT_NO_THROW(nlohmann::json::parse(StructuredJson(ce)));
}

}  // namespace
}  // namespace uploadbroker::deliver
