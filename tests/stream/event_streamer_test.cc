// Subscribe as a subscriber sees it: real gRPC streams from an EventStreamer
// over a SQLite ledger that the test appends to directly.
#include "stream/event_streamer.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/stream/test_broker.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::stream {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::AppendEvent;
using testing::Eventually;
using testing::Range;
using testing::Sub;
using testing::TestBroker;
using testing::UploadSpec;

UploadSpec Spec(std::string bucket, std::string key, std::string caller,
                std::map<std::string, std::string> metadata = {}) {
  UploadSpec s;
  s.bucket = std::move(bucket);
  s.key = std::move(key);
  s.caller = std::move(caller);
  s.metadata = std::move(metadata);
  return s;
}

v1::SubscribeRequest Start(v1::StartPosition start, uint64_t after = 0) {
  v1::SubscribeRequest r;
  r.set_start(start);
  r.set_after_cursor(after);
  return r;
}

class EventStreamerTest : public ::testing::Test {
 protected:
  void StartBroker(int64_t retain = 0, EventStreamer::Options so = {}) {
    TestBroker::Options o;
    o.db_path = dir_.File("ledger.db");
    o.port = port_;
    o.retain_max_events = retain;
    o.streamer = so;
    broker_ = std::make_unique<TestBroker>(o);
    port_ = broker_->port();
  }
  void StopBroker() { broker_.reset(); }

  uint64_t Append(const std::string& id, UploadSpec spec = {}, bool expire = false) {
    return AppendEvent(broker_->ledger(), id, spec, expire);
  }
  // Appends n events in uploads/app/ with ids prefix0..prefix(n-1).
  void AppendMany(const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) Append(absl::StrCat(prefix, i));
  }
  std::unique_ptr<Sub> Subscribe(const v1::SubscribeRequest& req,
                                 const std::string& key = "key-app",
                                 grpc::ChannelArguments args = {}) {
    return std::make_unique<Sub>(broker_->target(), key, req, args);
  }

  testing::TempDir dir_;
  int port_ = 0;
  std::unique_ptr<TestBroker> broker_;
};

TEST_F(EventStreamerTest, DeliversBacklogThenLiveEventsInCursorOrderExactlyOnce) {
  StartBroker();
  AppendMany("old", 20);
  auto earliest = Subscribe(Start(v1::START_POSITION_EARLIEST));
  auto latest = Subscribe(Start(v1::START_POSITION_LATEST));
  ASSERT_EQ(earliest->Started(), 0);
  ASSERT_EQ(latest->Started(), 20);
  // Live events race with the catch-up of the EARLIEST stream.
  std::thread writer([this] { AppendMany("new", 200); });
  EXPECT_THAT(earliest->Read(220), ElementsAreArray(Range(1, 220)));
  EXPECT_THAT(latest->Read(200), ElementsAreArray(Range(21, 220)));
  writer.join();
  // Nothing more: the next event is the next cursor.
  Append("last");
  EXPECT_THAT(earliest->Read(1), ElementsAreArray({221}));
  EXPECT_THAT(latest->Read(1), ElementsAreArray({221}));
}

TEST_F(EventStreamerTest, StartsAfterACursorAndRejectsBadStarts) {
  StartBroker();
  AppendMany("e", 5);
  auto after = Subscribe(Start(v1::START_POSITION_AFTER_CURSOR, 2));
  EXPECT_EQ(after->Started(), 2);
  EXPECT_THAT(after->Read(3), ElementsAreArray({3, 4, 5}));

  auto beyond = Subscribe(Start(v1::START_POSITION_AFTER_CURSOR, 6));
  grpc::Status st = beyond->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("after_cursor: 6 is beyond the newest cursor 5"));

  st = Subscribe(Start(v1::START_POSITION_LATEST, 3))->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("after_cursor:"));
}

TEST_F(EventStreamerTest, FiltersByPrefixesMetadataAndType) {
  StartBroker();
  v1::SubscribeRequest req = Start(v1::START_POSITION_LATEST);
  req.mutable_filter()->add_key_prefixes("uploads/app/a/");
  req.mutable_filter()->add_key_prefixes("uploads/app/b/");
  (*req.mutable_filter()->mutable_metadata())["tenant"] = "t1";
  req.mutable_filter()->add_types(v1::EVENT_TYPE_UPLOAD_COMPLETED);
  auto sub = Subscribe(req);
  ASSERT_EQ(sub->Started(), 0);
  const std::map<std::string, std::string> t1 = {{"tenant", "t1"}};
  uint64_t a1 = Append("1", Spec("photos", "uploads/app/a/1", "app", t1));
  Append("2", Spec("photos", "uploads/app/c/2", "app", t1));                 // prefix
  Append("3", Spec("photos", "uploads/app/b/3", "app", {{"tenant", "t2"}}));  // metadata
  Append("4", Spec("photos", "uploads/app/b/4", "app", t1), /*expire=*/true);  // type
  uint64_t b5 = Append("5", Spec("photos", "uploads/app/b/5", "app", t1));
  uint64_t a6 = Append("6", Spec("photos", "uploads/app/a/6", "app", t1));
  EXPECT_THAT(sub->Read(3), ElementsAreArray({a1, b5, a6}));
  EXPECT_EQ(sub->last().event().upload_completed().upload().key(), "uploads/app/a/6");
}

TEST_F(EventStreamerTest, FiltersByCaller) {
  StartBroker();
  v1::SubscribeRequest req = Start(v1::START_POSITION_LATEST);
  req.mutable_filter()->add_callers("batch");
  auto sub = Subscribe(req, "key-admin");
  ASSERT_EQ(sub->Started(), 0);
  Append("1", Spec("photos", "x/1", "app"));
  uint64_t mine = Append("2", Spec("private", "y/2", "batch"));
  Append("3", Spec("photos", "x/3", "app"));
  uint64_t sentinel = Append("4", Spec("photos", "x/4", "batch"));
  EXPECT_THAT(sub->Read(2), ElementsAreArray({mine, sentinel}));
}

TEST_F(EventStreamerTest, DeliversOnlyTheCallersOwnEventsInsideItsScope) {
  StartBroker();
  auto app = Subscribe(Start(v1::START_POSITION_LATEST));
  ASSERT_EQ(app->Started(), 0);
  uint64_t in1 = Append("1", Spec("photos", "uploads/app/1", "app"));
  Append("2", Spec("photos", "uploads/other/2", "admin"));
  Append("3", Spec("private", "uploads/app/3", "admin"));
  Append("4", Spec("photos", "uploads/app/4", "admin"));  // in scope, another caller's
  uint64_t in2 = Append("5", Spec("photos", "uploads/app/5", "app"));
  EXPECT_THAT(app->Read(2), ElementsAreArray({in1, in2}));
}

TEST_F(EventStreamerTest, RefusesFiltersOutsideTheScope) {
  StartBroker();
  v1::SubscribeRequest req;
  req.mutable_filter()->add_buckets("private");
  grpc::Status st = Subscribe(req)->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("filter.buckets[0]"));

  req.Clear();
  req.mutable_filter()->add_key_prefixes("uploads/");
  st = Subscribe(req)->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("filter.key_prefixes[0]"));

  st = Subscribe(Start(v1::START_POSITION_LATEST), "wrong-key")->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(broker_->streamer().stream_count(), 0u);
}

TEST_F(EventStreamerTest, ResumingAfterTheLastCursorGivesNoGapAndNoRepeat) {
  StartBroker();
  AppendMany("a", 10);
  auto first = Subscribe(Start(v1::START_POSITION_EARLIEST));
  std::vector<uint64_t> got = first->Read(4);
  EXPECT_THAT(got, ElementsAreArray({1, 2, 3, 4}));
  first->Cancel();
  first->Finish();
  auto second = Subscribe(Start(v1::START_POSITION_AFTER_CURSOR, got.back()));
  EXPECT_THAT(second->Read(6), ElementsAreArray(Range(5, 10)));
  Append("live");
  EXPECT_THAT(second->Read(1), ElementsAreArray({11}));
}

TEST_F(EventStreamerTest, ResumesAcrossARestartOfTheBroker) {
  StartBroker();
  AppendMany("before", 5);
  uint64_t last_seen;
  {
    auto sub = Subscribe(Start(v1::START_POSITION_EARLIEST));
    std::vector<uint64_t> got = sub->Read(3);
    ASSERT_THAT(got, ElementsAreArray({1, 2, 3}));
    last_seen = got.back();
    StopBroker();  // the stream ends (UNAVAILABLE) with events 4, 5 undelivered or unread
    sub->Read(10);
    EXPECT_FALSE(sub->Finish().ok());
  }
  StartBroker();
  AppendMany("after", 5);
  auto sub = Subscribe(Start(v1::START_POSITION_AFTER_CURSOR, last_seen));
  EXPECT_THAT(sub->Read(7), ElementsAreArray(Range(4, 10)));
}

TEST_F(EventStreamerTest, CursorOlderThanRetentionIsOutOfRangeNamingTheOldest) {
  StartBroker(/*retain=*/3);
  AppendMany("e", 10);
  while (true) {
    auto pruned = broker_->ledger().PruneNow();
    ASSERT_TRUE(pruned.ok()) << pruned.status();
    if (*pruned == 0) break;
  }
  auto first = broker_->ledger().FirstCursor();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(*first, 8u);

  grpc::Status st = Subscribe(Start(v1::START_POSITION_AFTER_CURSOR, 2))->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(st.error_message(),
              HasSubstr("cursor 2 is older than retention; oldest available is 8"));
  // Right at the edge nothing is missing.
  EXPECT_THAT(Subscribe(Start(v1::START_POSITION_AFTER_CURSOR, 7))->Read(3),
              ElementsAreArray({8, 9, 10}));
  // EARLIEST means the oldest retained event.
  EXPECT_THAT(Subscribe(Start(v1::START_POSITION_EARLIEST))->Read(3),
              ElementsAreArray({8, 9, 10}));
}

// Client-side flow control small enough that a subscriber that stops
// reading blocks the broker's write to it after a few events.
grpc::ChannelArguments SmallWindow() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  return args;
}

UploadSpec Big(int i) {
  UploadSpec s;
  s.key = absl::StrCat("uploads/app/big/", i);
  s.metadata["blob"] = std::string(16 * 1024, 'x');
  return s;
}

TEST_F(EventStreamerTest, StreamThatFellBehindRetentionEndsOutOfRange) {
  EventStreamer::Options so;
  so.batch_size = 2;
  StartBroker(/*retain=*/3, so);
  for (int i = 0; i < 3; ++i) Append(absl::StrCat("b", i), Big(i));
  auto stalled = Subscribe(Start(v1::START_POSITION_EARLIEST), "key-app", SmallWindow());
  ASSERT_EQ(stalled->Started(), 0);  // EARLIEST: before the first event
  for (int i = 3; i < 40; ++i) Append(absl::StrCat("b", i), Big(i));
  while (broker_->ledger().PruneNow().value_or(0) > 0) {
  }
  std::vector<uint64_t> got = stalled->Read(100);
  grpc::Status st = stalled->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::OUT_OF_RANGE) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("older than retention"));
  // What it did receive is contiguous: nothing was skipped silently.
  ASSERT_FALSE(got.empty());
  EXPECT_THAT(got, ElementsAreArray(Range(got.front(), got.back())));
  EXPECT_LT(got.back(), 38u);
}

TEST_F(EventStreamerTest, StalledSubscriberDelaysNeitherOthersNorCommits) {
  StartBroker();
  auto stalled = Subscribe(Start(v1::START_POSITION_LATEST), "key-app", SmallWindow());
  auto reader = Subscribe(Start(v1::START_POSITION_LATEST));
  ASSERT_EQ(stalled->Started(), 0);
  ASSERT_EQ(reader->Started(), 0);

  constexpr int kEvents = 200;  // ~3.2 MB: far beyond the stalled window
  std::vector<uint64_t> got;
  std::thread consumer([&] { got = reader->Read(kEvents); });
  absl::Duration slowest_commit;
  for (int i = 0; i < kEvents; ++i) {
    absl::Time t0 = absl::Now();
    Append(absl::StrCat("s", i), Big(i));
    slowest_commit = std::max(slowest_commit, absl::Now() - t0);
  }
  absl::Time committed = absl::Now();
  consumer.join();
  absl::Duration lag = absl::Now() - committed;
  EXPECT_THAT(got, ElementsAreArray(Range(1, kEvents)));
  EXPECT_LT(lag, absl::Seconds(2)) << "the reading subscriber waited for the stalled one";
  EXPECT_LT(slowest_commit, absl::Seconds(2)) << "a commit waited for the stalled subscriber";
  EXPECT_EQ(broker_->streamer().stream_count(), 2u);
  // The stalled subscriber only fell behind in the log: once it reads, it
  // gets everything, in order.
  EXPECT_THAT(stalled->Read(kEvents), ElementsAreArray(Range(1, kEvents)));
}

TEST_F(EventStreamerTest, ShutdownCancelsStreamsWhoseClientStoppedReading) {
  EventStreamer::Options so;
  so.shutdown_grace = absl::Milliseconds(300);
  StartBroker(0, so);
  auto stalled = Subscribe(Start(v1::START_POSITION_LATEST), "key-app", SmallWindow());
  auto parked = Subscribe(Start(v1::START_POSITION_LATEST), "key-admin");
  ASSERT_EQ(stalled->Started(), 0);
  ASSERT_EQ(parked->Started(), 0);
  for (int i = 0; i < 50; ++i) Append(absl::StrCat("s", i), Big(i));
  EXPECT_EQ(parked->Read(50).size(), 50u);

  // The write to the stalled client can never finish; Shutdown waits the
  // grace period, then cancels it instead of hanging.
  absl::Time t0 = absl::Now();
  broker_->streamer().Shutdown();
  // Bounded by the grace, not by the stalled client (30 s of slack for a
  // busy machine: the point is that it does not hang).
  EXPECT_LT(absl::Now() - t0, so.shutdown_grace + absl::Seconds(30));
  EXPECT_EQ(broker_->streamer().stream_count(), 0u);
  EXPECT_EQ(parked->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  stalled->Read(100);
  EXPECT_EQ(stalled->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(EventStreamerTest, ClientCancelEndsTheStreamAndUnregistersIt) {
  StartBroker();
  auto sub = Subscribe(Start(v1::START_POSITION_LATEST));
  ASSERT_EQ(sub->Started(), 0);
  EXPECT_EQ(broker_->streamer().stream_count(), 1u);
  sub->Cancel();
  EXPECT_EQ(sub->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return broker_->streamer().stream_count() == 0; }));
  // Commits after the cancel reach no one and break nothing.
  Append("x");
  auto next = Subscribe(Start(v1::START_POSITION_EARLIEST));
  EXPECT_THAT(next->Read(1), ElementsAreArray({1}));
}

TEST_F(EventStreamerTest, ShutdownEndsParkedStreamsWithUnavailablePromptly) {
  StartBroker();
  AppendMany("e", 3);
  std::vector<std::unique_ptr<Sub>> subs;
  for (int i = 0; i < 5; ++i) {
    subs.push_back(Subscribe(Start(v1::START_POSITION_EARLIEST)));
    EXPECT_EQ(subs.back()->Read(3).size(), 3u);  // caught up, now parked
  }
  absl::Time t0 = absl::Now();
  broker_->streamer().Shutdown();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  EXPECT_EQ(broker_->streamer().stream_count(), 0u);
  for (auto& sub : subs) {
    grpc::Status st = sub->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(st.error_message(), HasSubstr("shutting down"));
  }
  // New streams are refused while the server finishes draining.
  EXPECT_EQ(Subscribe(Start(v1::START_POSITION_LATEST))->Finish().error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(EventStreamerTest, ManyParkedStreamsAllReceiveEachEvent) {
  StartBroker();
  std::vector<std::unique_ptr<Sub>> subs;
  for (int i = 0; i < 50; ++i) {
    subs.push_back(Subscribe(Start(v1::START_POSITION_LATEST)));
    ASSERT_EQ(subs.back()->Started(), 0);
  }
  AppendMany("e", 30);
  for (auto& sub : subs) EXPECT_THAT(sub->Read(30), ElementsAreArray(Range(1, 30)));
}

}  // namespace
}  // namespace uploadbroker::stream
