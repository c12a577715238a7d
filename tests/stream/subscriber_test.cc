// The C++ client's Subscriber and `ubctl watch` helpers against a real
// EventStreamer: reconnects, resumes from the acknowledged cursor, gives up
// on errors retrying cannot fix.
#include "client/subscriber.h"

#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/watch.h"
#include "common/backoff.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/stream/test_broker.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::client {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::AppendEvent;
using testing::Range;
using testing::TestBroker;

// Collects what a Subscriber delivers; runs it on its own thread.
class Collector {
 public:
  explicit Collector(Subscriber::Options options) : subscriber_(std::move(options)) {}
  ~Collector() { Stop(); }

  void Start(std::function<absl::Status(const v1::Event&)> extra = nullptr) {
    thread_ = std::thread([this, extra] {
      absl::Status st = subscriber_.Run([this, extra](const v1::Event& e) {
        if (extra) {
          absl::Status s = extra(e);
          if (!s.ok()) return s;
        }
        absl::MutexLock lock(&mu_);
        cursors_.push_back(e.cursor());
        return absl::OkStatus();
      });
      absl::MutexLock lock(&mu_);
      result_ = st;
      done_ = true;
    });
  }

  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    want_ = n;
    return mu_.AwaitWithTimeout(absl::Condition(this, &Collector::Enough), timeout) &&
           cursors_.size() >= n;
  }

  absl::Status Wait() {
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return result_;
  }

  void Stop() {
    subscriber_.Stop();
    if (thread_.joinable()) thread_.join();
  }

  std::vector<uint64_t> cursors() {
    absl::MutexLock lock(&mu_);
    return cursors_;
  }
  Subscriber& subscriber() { return subscriber_; }

 private:
  bool Enough() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return cursors_.size() >= want_ || done_;
  }

  Subscriber subscriber_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> cursors_ ABSL_GUARDED_BY(mu_);
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  size_t want_ ABSL_GUARDED_BY(mu_) = 0;
};

class SubscriberTest : public ::testing::Test {
 protected:
  void StartBroker() {
    TestBroker::Options o;
    o.db_path = dir_.File("ledger.db");
    o.port = port_;
    broker_ = std::make_unique<TestBroker>(o);
    port_ = broker_->port();
  }
  Subscriber::Options Opts(const std::string& key = "key-app") {
    Subscriber::Options o;
    o.target = absl::StrCat("127.0.0.1:", port_);
    o.api_key = key;
    o.initial_backoff = absl::Milliseconds(20);
    o.max_backoff = absl::Milliseconds(200);
    return o;
  }
  void AppendMany(ledger::Ledger& ledger, const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) AppendEvent(ledger, absl::StrCat(prefix, i), {});
  }

  testing::TempDir dir_;
  int port_ = 0;
  std::unique_ptr<TestBroker> broker_;
};

TEST(BackoffTest, GrowsExponentiallyWithBoundedJitterUpToTheCap) {
  Subscriber::Options o;
  o.initial_backoff = absl::Milliseconds(100);
  o.max_backoff = absl::Seconds(2);
  o.backoff_multiplier = 2;
  o.jitter = 0.2;
  EXPECT_EQ(BackoffDelay(o, 0, 0.5), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(o, 3, 0.5), absl::Milliseconds(800));
  EXPECT_EQ(BackoffDelay(o, 10, 0.5), absl::Seconds(2));
  EXPECT_EQ(BackoffDelay(o, 1000, 0.5), absl::Seconds(2));
  EXPECT_EQ(BackoffDelay(o, 0, 0.0), absl::Milliseconds(80));
  EXPECT_GE(BackoffDelay(o, 0, 0.999), absl::Milliseconds(119));
  EXPECT_LE(BackoffDelay(o, 0, 0.999), absl::Milliseconds(120));
}

TEST(BackoffTest, IsTheSharedSchedule) {
  Subscriber::Options o;
  common::Backoff shared{o.initial_backoff, o.backoff_multiplier, o.max_backoff, o.jitter};
  for (int attempt : {0, 1, 5, 30}) {
    for (double u : {0.0, 0.3, 0.99}) EXPECT_EQ(BackoffDelay(o, attempt, u), shared.Delay(attempt, u));
  }
}

TEST(BackoffTest, GivesUpOnlyOnErrorsRetryingCannotFix) {
  EXPECT_TRUE(IsFinalSubscribeError(absl::StatusCode::kUnauthenticated));
  EXPECT_TRUE(IsFinalSubscribeError(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(IsFinalSubscribeError(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(IsFinalSubscribeError(absl::StatusCode::kOutOfRange));
  EXPECT_FALSE(IsFinalSubscribeError(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(IsFinalSubscribeError(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(IsFinalSubscribeError(absl::StatusCode::kInternal));
}

TEST_F(SubscriberTest, ReconnectsAfterABrokerRestartWithoutGapOrRepeat) {
  StartBroker();
  Subscriber::Options o = Opts();
  int connects = 0;
  o.on_connected = [&connects](uint64_t) { ++connects; };
  Collector c(o);
  c.Start();
  // Started (LATEST, at cursor 0) before any event.
  ASSERT_TRUE(testing::Eventually([&] { return c.subscriber().acked_cursor().has_value(); }));
  AppendMany(broker_->ledger(), "a", 5);
  ASSERT_TRUE(c.WaitFor(5));

  // Down: the stream ends with UNAVAILABLE. Events committed while no
  // broker serves are delivered after the restart.
  broker_.reset();
  {
    ledger::SqliteLedger::Options lo;
    lo.path = dir_.File("ledger.db");
    common::RealClock clock;
    lo.clock = &clock;
    auto offline = ledger::SqliteLedger::Create(lo);
    ASSERT_TRUE(offline.ok()) << offline.status();
    AppendMany(**offline, "b", 3);
  }
  StartBroker();
  AppendMany(broker_->ledger(), "c", 4);
  ASSERT_TRUE(c.WaitFor(12));
  c.Stop();
  EXPECT_TRUE(c.Wait().ok());
  EXPECT_THAT(c.cursors(), ElementsAreArray(Range(1, 12)));
  EXPECT_EQ(c.subscriber().acked_cursor(), 12u);
  EXPECT_GE(connects, 2);
}

TEST_F(SubscriberTest, ResumesFromTheLastAcknowledgedEvent) {
  StartBroker();
  AppendMany(broker_->ledger(), "a", 6);
  Subscriber::Options o = Opts();
  o.request.set_start(v1::START_POSITION_EARLIEST);
  Collector first(o);
  first.Start([](const v1::Event& e) {
    return e.cursor() == 4 ? absl::InternalError("disk full") : absl::OkStatus();
  });
  absl::Status st = first.Wait();
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(first.cursors(), ElementsAreArray({1, 2, 3}));
  ASSERT_EQ(first.subscriber().acked_cursor(), 3u);

  Subscriber::Options again = Opts();
  again.request.set_start(v1::START_POSITION_AFTER_CURSOR);
  again.request.set_after_cursor(*first.subscriber().acked_cursor());
  Collector second(again);
  second.Start();
  ASSERT_TRUE(second.WaitFor(3));
  second.Stop();
  EXPECT_THAT(second.cursors(), ElementsAreArray({4, 5, 6}));
}

TEST_F(SubscriberTest, StopsAndReportsErrorsRetryingCannotFix) {
  StartBroker();
  Subscriber::Options o = Opts();
  o.request.mutable_filter()->add_buckets("private");
  Collector denied(o);
  denied.Start();
  absl::Status st = denied.Wait();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("filter.buckets[0]"));

  Collector unauthenticated(Opts("nope"));
  unauthenticated.Start();
  EXPECT_EQ(unauthenticated.Wait().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(SubscriberTest, RetriesWhileTheBrokerIsDownAndStopsOnRequest) {
  StartBroker();
  broker_.reset();  // port_ now refuses connections
  Subscriber::Options o = Opts();
  std::atomic<int> retries{0};
  o.on_retry = [&retries](const absl::Status& st, absl::Duration) {
    EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
    ++retries;
  };
  Collector c(o);
  c.Start();
  ASSERT_TRUE(testing::Eventually([&] { return retries.load() >= 3; }));
  c.Stop();
  EXPECT_TRUE(c.Wait().ok());
}

TEST(WatchTest, BuildsTheRequestFromFlags) {
  WatchArgs a;
  a.buckets = {"photos"};
  a.key_prefixes = {"a/", "b/"};
  a.metadata = {"tenant=t1", "k=v=w"};
  a.callers = {"app"};
  a.types = {"completed", "expired"};
  a.start = "earliest";
  auto req = WatchRequest(a);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->start(), v1::START_POSITION_EARLIEST);
  EXPECT_EQ(req->filter().key_prefixes_size(), 2);
  EXPECT_EQ(req->filter().metadata().at("k"), "v=w");
  EXPECT_EQ(req->filter().types(1), v1::EVENT_TYPE_UPLOAD_EXPIRED);
  a.cursor = 17;
  req = WatchRequest(a);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->start(), v1::START_POSITION_AFTER_CURSOR);
  EXPECT_EQ(req->after_cursor(), 17u);

  a.types = {"done"};
  EXPECT_THAT(WatchRequest(a).status().message(), HasSubstr("--types"));
  a.types = {};
  a.metadata = {"novalue"};
  EXPECT_THAT(WatchRequest(a).status().message(), HasSubstr("--meta"));
}

TEST(WatchTest, CursorFileRoundTripsAndIsAbsentUntilWritten) {
  testing::TempDir dir;
  std::string path = dir.File("cursor");
  auto none = ReadCursorFile(path);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(WriteCursorFile(path, 41).ok());
  ASSERT_TRUE(WriteCursorFile(path, 42).ok());
  auto got = ReadCursorFile(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(**got, 42u);
  dir.WriteFile("bad", "forty-two");
  EXPECT_EQ(ReadCursorFile(dir.File("bad")).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace uploadbroker::client
