#include "stream/event_filter.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::stream {
namespace {

using ::testing::HasSubstr;

auth::Identity App() {
  auth::Identity c;
  c.name = "app";
  c.scope.buckets = {"photos", "docs"};
  c.scope.key_prefixes = {"uploads/app/", "shared/"};
  return c;
}

v1::Event Completed(const std::string& bucket, const std::string& key,
                    const std::string& caller = "app",
                    std::map<std::string, std::string> metadata = {}) {
  v1::Event e;
  e.set_cursor(1);
  e.set_type(v1::EVENT_TYPE_UPLOAD_COMPLETED);
  v1::Upload* u = e.mutable_upload_completed()->mutable_upload();
  u->set_bucket(bucket);
  u->set_key(key);
  u->set_caller(caller);
  u->mutable_metadata()->insert(metadata.begin(), metadata.end());
  u->mutable_completion()->set_key(key);
  return e;
}

v1::Event Expired(const std::string& bucket, const std::string& key) {
  v1::Event e;
  e.set_cursor(2);
  e.set_type(v1::EVENT_TYPE_UPLOAD_EXPIRED);
  v1::Upload* u = e.mutable_upload_expired()->mutable_upload();
  u->set_bucket(bucket);
  u->set_key(key);
  u->set_caller("app");
  return e;
}

EventFilter Make(const v1::EventFilter& f, const auth::Identity& caller = App()) {
  auto filter = EventFilter::Create(f, caller);
  EXPECT_TRUE(filter.ok()) << filter.status();
  return *std::move(filter);
}

// The filter's verdict on `e`, checking that it is the same whether the
// streamer reads the stored record (EventView::Parse) or a parsed event.
bool Matches(const EventFilter& f, const v1::Event& e) {
  const std::string record = e.SerializeAsString();
  absl::StatusOr<EventView> view = EventView::Parse(record);
  EXPECT_TRUE(view.ok()) << view.status();
  const bool parsed = f.Matches(e);
  EXPECT_EQ(view.ok() && f.Matches(*view), parsed) << "record and parsed event disagree";
  return parsed;
}

TEST(EventFilterTest, EmptyFilterMatchesEverythingInScopeOnly) {
  EventFilter f = Make({});
  EXPECT_TRUE(Matches(f, Completed("photos", "uploads/app/a.png")));
  EXPECT_TRUE(Matches(f, Completed("docs", "shared/b.pdf")));
  EXPECT_TRUE(Matches(f, Expired("photos", "uploads/app/c.png")));
  EXPECT_FALSE(Matches(f, Completed("private", "uploads/app/a.png")));
  EXPECT_FALSE(Matches(f, Completed("photos", "uploads/other/a.png")));
}

TEST(EventFilterTest, ScopeUsesTheKeyOssStoredForPrefixIntents) {
  v1::Event e = Completed("photos", "uploads/app/");
  e.mutable_upload_completed()->mutable_upload()->set_key_is_prefix(true);
  e.mutable_upload_completed()->mutable_upload()->mutable_completion()->set_key(
      "uploads/app/x/1.png");
  v1::EventFilter req;
  req.add_key_prefixes("uploads/app/x/");
  EXPECT_TRUE(Matches(Make(req), e));
  req.set_key_prefixes(0, "uploads/app/y/");
  EXPECT_FALSE(Matches(Make(req), e));
}

TEST(EventFilterTest, AnyOfSeveralPrefixes) {
  v1::EventFilter req;
  req.add_key_prefixes("uploads/app/avatars/");
  req.add_key_prefixes("shared/");
  EventFilter f = Make(req);
  EXPECT_TRUE(Matches(f, Completed("photos", "uploads/app/avatars/1.png")));
  EXPECT_TRUE(Matches(f, Completed("photos", "shared/2.png")));
  EXPECT_FALSE(Matches(f, Completed("photos", "uploads/app/banners/3.png")));
}

TEST(EventFilterTest, AnyOfSeveralBuckets) {
  v1::EventFilter req;
  req.add_buckets("docs");
  EventFilter f = Make(req);
  EXPECT_TRUE(Matches(f, Completed("docs", "shared/a")));
  EXPECT_FALSE(Matches(f, Completed("photos", "shared/a")));
}

TEST(EventFilterTest, EveryMetadataEntryMustBeEqual) {
  v1::EventFilter req;
  (*req.mutable_metadata())["tenant"] = "t1";
  (*req.mutable_metadata())["kind"] = "avatar";
  EventFilter f = Make(req);
  EXPECT_TRUE(Matches(f, Completed("photos", "shared/a", "app",
                                  {{"tenant", "t1"}, {"kind", "avatar"}, {"x", "y"}})));
  EXPECT_FALSE(Matches(f, Completed("photos", "shared/a", "app", {{"tenant", "t1"}})));
  EXPECT_FALSE(Matches(f, 
      Completed("photos", "shared/a", "app", {{"tenant", "t2"}, {"kind", "avatar"}})));
}

TEST(EventFilterTest, EventTypesAndCallers) {
  v1::EventFilter req;
  req.add_types(v1::EVENT_TYPE_UPLOAD_EXPIRED);
  EventFilter expired_only = Make(req);
  EXPECT_TRUE(Matches(expired_only, Expired("photos", "shared/a")));
  EXPECT_FALSE(Matches(expired_only, Completed("photos", "shared/a")));

  req.add_types(v1::EVENT_TYPE_UNSPECIFIED);  // "any" wins
  EXPECT_TRUE(Matches(Make(req), Completed("photos", "shared/a")));

  v1::EventFilter by_caller;
  by_caller.add_callers("batch-job");
  auth::Identity reader = App();
  reader.read_callers = {"batch-job"};
  EventFilter f = Make(by_caller, reader);
  EXPECT_TRUE(Matches(f, Completed("photos", "shared/a", "batch-job")));
  EXPECT_FALSE(Matches(f, Completed("photos", "shared/a", "app")));
}

TEST(EventFilterTest, RefusesBucketsAndPrefixesOutsideTheScopeNamingTheField) {
  v1::EventFilter req;
  req.add_buckets("photos");
  req.add_buckets("private");
  auto f = EventFilter::Create(req, App());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(f.status().message(), HasSubstr("filter.buckets[1]"));

  v1::EventFilter prefixes;
  prefixes.add_key_prefixes("shared/x/");
  prefixes.add_key_prefixes("uploads/");  // wider than uploads/app/
  f = EventFilter::Create(prefixes, App());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(f.status().message(), HasSubstr("filter.key_prefixes[1]"));

  v1::EventFilter types;
  types.add_types(static_cast<v1::EventType>(42));
  f = EventFilter::Create(types, App());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("filter.types[0]"));
}

TEST(EventFilterTest, CallerWithoutPrefixesSeesAnyKeyInItsBuckets) {
  auth::Identity admin;
  admin.name = "admin";
  admin.scope.buckets = {"photos"};
  admin.read_callers = {"*"};  // the events below are app's
  v1::EventFilter req;
  req.add_key_prefixes("");
  EventFilter f = Make(req, admin);
  EXPECT_TRUE(Matches(f, Completed("photos", "anything")));
  EXPECT_FALSE(Matches(f, Completed("docs", "anything")));
}

TEST(EventViewTest, ReadsWhatFiltersNeedFromTheStoredRecord) {
  v1::Event e = Completed("photos", "uploads/app/intent-key", "app", {{"a", "1"}, {"b", "2"}});
  e.set_cursor(77);
  e.mutable_upload_completed()->mutable_upload()->mutable_completion()->set_key("stored-key");
  const std::string record = e.SerializeAsString();
  absl::StatusOr<EventView> view = EventView::Parse(record);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->cursor(), 77u);
  EXPECT_EQ(view->type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  EXPECT_EQ(view->bucket(), "photos");
  EXPECT_EQ(view->caller(), "app");
  EXPECT_EQ(view->object_key(), "stored-key");  // OSS's key wins over the intent's
  EXPECT_TRUE(view->MetadataEquals("b", "2"));
  EXPECT_FALSE(view->MetadataEquals("b", "1"));
  EXPECT_FALSE(view->MetadataEquals("c", ""));

  // Without a completion key, the intent's key; without a payload, nothing.
  const std::string expired = Expired("docs", "shared/x").SerializeAsString();
  EXPECT_EQ(EventView::Parse(expired)->object_key(), "shared/x");
  v1::Event bare;
  bare.set_cursor(5);
  const std::string bare_record = bare.SerializeAsString();
  EXPECT_EQ(EventView::Parse(bare_record)->bucket(), "");
  EXPECT_EQ(EventView::Parse(bare_record)->cursor(), 5u);
}

TEST(EventViewTest, RefusesMalformedRecords) {
  const std::string record = Completed("photos", "uploads/app/a").SerializeAsString();
  for (size_t cut : {size_t{1}, record.size() / 2, record.size() - 1}) {
    EXPECT_FALSE(EventView::Parse(absl::string_view(record).substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(EventView::Parse("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").ok());
  // A second payload would be merged by protobuf; the view refuses it.
  EXPECT_FALSE(EventView::Parse(record + record.substr(record.find('\x22'))).ok());
}

}  // namespace
}  // namespace uploadbroker::stream

namespace uploadbroker::stream {
namespace {

// Item 9: a caller's events only, unless read_callers grants more.
TEST(EventFilterTest, MatchesOnlyUploadsTheCallerMayRead) {
  EventFilter own = Make({});
  EXPECT_TRUE(Matches(own, Completed("photos", "shared/a", "app")));
  EXPECT_FALSE(Matches(own, Completed("photos", "shared/a", "batch-job")));
  EXPECT_FALSE(Matches(own, Completed("photos", "shared/a", "")));

  auth::Identity auditor = App();
  auditor.read_callers = {"*"};
  EventFilter all = Make({}, auditor);
  EXPECT_TRUE(Matches(all, Completed("photos", "shared/a", "batch-job")));
  EXPECT_TRUE(Matches(all, Completed("photos", "shared/a", "")));
  EXPECT_FALSE(Matches(all, Completed("private", "shared/a", "batch-job")));  // scope still holds

  v1::EventFilter others;
  others.add_callers("app");
  others.add_callers("batch-job");
  auto refused = EventFilter::Create(others, App());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("filter.callers[1]"));
}

// Item 5: each list bounded, naming the field, the cap and the count;
// repeats accepted and matched once.
TEST(EventFilterTest, BoundsEveryListAndDropsRepeats) {
  v1::EventFilter req;
  for (int i = 0; i < 65; ++i) req.add_key_prefixes("shared/");
  auto over = EventFilter::Create(req, App());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), HasSubstr("filter.key_prefixes: 65 entries, at most 64 allowed"));

  req.Clear();
  for (int i = 0; i < 64; ++i) req.add_key_prefixes("shared/");
  for (int i = 0; i < 64; ++i) req.add_types(v1::EVENT_TYPE_UPLOAD_COMPLETED);
  EventFilter f = Make(req);
  EXPECT_TRUE(Matches(f, Completed("photos", "shared/a")));
  EXPECT_FALSE(Matches(f, Expired("photos", "shared/a")));

  req.Clear();
  (*req.mutable_metadata())["k"] = std::string(1025, 'v');
  auto long_value = EventFilter::Create(req, App());
  EXPECT_EQ(long_value.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(long_value.status().message(), HasSubstr("filter.metadata[k]: 1025 bytes, at most 1024"));
}

}  // namespace
}  // namespace uploadbroker::stream
