// HeadObjectConfirmer with a fake probe (what OSS answers is the test's
// choice; the real HeadObject client is tested in tests/ossapi and end to end
// in confirm_e2e_test.cc): verdicts, the queue bound, the time budget and
// shutdown.
#include "ingest/confirmer.h"

#include <atomic>
#include <map>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace uploadbroker::ingest {
namespace {

// Answers from a table; optionally every HEAD waits for `release` first.
class FakeProbe final : public ossapi::ObjectProbe {
 public:
  absl::StatusOr<ossapi::ObjectFacts> Head(const config::Bucket& bucket,
                                           const std::string& key) override {
    ++calls;
    if (release != nullptr) release->WaitForNotification();
    auto it = objects.find(bucket.name + "/" + key);
    if (it == objects.end()) return absl::NotFoundError("no such object");
    return it->second;
  }
  std::map<std::string, absl::StatusOr<ossapi::ObjectFacts>> objects;
  absl::Notification* release = nullptr;
  std::atomic<int> calls{0};
};

// Waits for one verdict.
struct Verdict {
  absl::Notification done;
  absl::Status status;
  ossapi::ObjectFacts facts;
  Confirmer::Done Callback() {
    return [this](absl::Status s, const ossapi::ObjectFacts& f) {
      status = std::move(s);
      facts = f;
      done.Notify();
    };
  }
  absl::Status Wait() {
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    return status;
  }
};

completion::ReportedObject Reported(int64_t size = 5, const std::string& etag = "\"ABC\"",
                                    const std::string& type = "image/png") {
  completion::ReportedObject o;
  o.bucket = "photos";
  o.key = "uploads/a.png";
  o.size = size;
  o.etag = etag;
  o.content_type = type;
  return o;
}

ossapi::ObjectFacts Held(int64_t size = 5, const std::string& etag = "ABC",
                         const std::string& type = "image/png") {
  ossapi::ObjectFacts f;
  f.size = size;
  f.etag = etag;
  f.content_type = type;
  return f;
}

class ConfirmerTest : public ::testing::Test {
 protected:
  ConfirmerTest() {
    config::Bucket b;
    b.name = "photos";
    config_.buckets.push_back(b);
  }
  std::unique_ptr<HeadObjectConfirmer> Make(HeadObjectConfirmer::Options o = {}) {
    return std::make_unique<HeadObjectConfirmer>(config_, probe_, o);
  }
  config::Config config_;
  FakeProbe probe_;
};

TEST(CompareWithBucket, SameObjectIgnoringQuotesAndCase) {
  EXPECT_TRUE(CompareWithBucket(Reported(5, "\"abc\""), Held(5, "ABC")).ok());
  EXPECT_TRUE(CompareWithBucket(Reported(5, "ABC", "IMAGE/PNG"), Held()).ok());
}

TEST(CompareWithBucket, NamesTheFieldThatDiffers) {
  absl::Status st = CompareWithBucket(Reported(6), Held(5));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message().substr(0, 41), "size: the callback reports 6, the bucket ");
  st = CompareWithBucket(Reported(5, "\"DEF\""), Held());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message().substr(0, 5), "etag:");
  st = CompareWithBucket(Reported(5, "ABC", "text/html"), Held());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message().substr(0, 9), "mimeType:");
}

TEST_F(ConfirmerTest, VerdictsFollowWhatTheBucketHolds) {
  auto c = Make();
  probe_.objects["photos/uploads/a.png"] = Held();
  Verdict ok, mismatch;
  c->Confirm(Reported(), nullptr, ok.Callback());
  EXPECT_TRUE(ok.Wait().ok()) << ok.status;
  c->Confirm(Reported(7), nullptr, mismatch.Callback());
  EXPECT_EQ(mismatch.Wait().code(), absl::StatusCode::kFailedPrecondition);

  probe_.objects.clear();
  Verdict missing;
  c->Confirm(Reported(), nullptr, missing.Callback());
  EXPECT_EQ(missing.Wait().code(), absl::StatusCode::kNotFound) << missing.status;

  probe_.objects["photos/uploads/a.png"] = absl::UnavailableError("HTTP 503");
  Verdict down;
  c->Confirm(Reported(), nullptr, down.Callback());
  EXPECT_EQ(down.Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(down.status.message().find("OSS could not confirm"), std::string::npos) << down.status;
}

TEST_F(ConfirmerTest, ABucketOutsideTheConfigIsRefusedWithoutAHead) {
  auto c = Make();
  completion::ReportedObject o = Reported();
  o.bucket = "their-bucket";
  Verdict v;
  c->Confirm(o, nullptr, v.Callback());
  EXPECT_EQ(v.Wait().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(probe_.calls, 0);
}

TEST_F(ConfirmerTest, AFullQueueIsRefusedAtOnce) {
  absl::Notification release;
  probe_.release = &release;
  probe_.objects["photos/uploads/a.png"] = Held();
  HeadObjectConfirmer::Options o;
  o.threads = 1;
  o.max_queue = 1;
  o.budget = absl::Seconds(30);
  auto c = Make(o);
  Verdict first, second, third;
  c->Confirm(Reported(), nullptr, first.Callback());
  while (probe_.calls == 0) absl::SleepFor(absl::Milliseconds(1));  // the worker holds it
  c->Confirm(Reported(), nullptr, second.Callback());  // waits in the queue
  c->Confirm(Reported(), nullptr, third.Callback());   // over the bound
  EXPECT_EQ(third.Wait().code(), absl::StatusCode::kResourceExhausted);
  release.Notify();
  EXPECT_TRUE(first.Wait().ok());
  EXPECT_TRUE(second.Wait().ok());
}

TEST_F(ConfirmerTest, ARequestThatWaitedPastTheBudgetGetsNoHead) {
  absl::Notification release;
  probe_.release = &release;
  probe_.objects["photos/uploads/a.png"] = Held();
  HeadObjectConfirmer::Options o;
  o.threads = 1;
  o.budget = absl::Milliseconds(200);
  o.head_timeout = absl::Milliseconds(150);
  auto c = Make(o);
  Verdict first, late;
  c->Confirm(Reported(), nullptr, first.Callback());
  while (probe_.calls == 0) absl::SleepFor(absl::Milliseconds(1));
  c->Confirm(Reported(), nullptr, late.Callback());
  absl::SleepFor(absl::Milliseconds(100));  // longer than budget - head_timeout
  release.Notify();
  EXPECT_TRUE(first.Wait().ok());
  EXPECT_EQ(late.Wait().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(probe_.calls, 1) << "a HEAD after the budget is spent could not be answered in time";
}

TEST_F(ConfirmerTest, ShutdownAnswersWhatStillWaits) {
  absl::Notification release;
  probe_.release = &release;
  probe_.objects["photos/uploads/a.png"] = Held();
  HeadObjectConfirmer::Options o;
  o.threads = 1;
  auto c = Make(o);
  Verdict running, queued, after;
  c->Confirm(Reported(), nullptr, running.Callback());
  while (probe_.calls == 0) absl::SleepFor(absl::Milliseconds(1));
  c->Confirm(Reported(), nullptr, queued.Callback());
  std::thread stopper([&] { c->Shutdown(); });
  EXPECT_EQ(queued.Wait().code(), absl::StatusCode::kUnavailable);
  release.Notify();
  stopper.join();
  EXPECT_TRUE(running.Wait().ok());
  c->Confirm(Reported(), nullptr, after.Callback());
  EXPECT_EQ(after.Wait().code(), absl::StatusCode::kUnavailable);
}

// The lookup runs first, on the pool; when it refuses, no HEAD is sent and
// its status is the verdict. When it agrees, the HEAD's facts (Last-Modified
// included) reach `done`.
TEST_F(ConfirmerTest, LookupRefusalSendsNoHead) {
  ossapi::ObjectFacts held = Held();
  held.last_modified = absl::FromUnixSeconds(1'700'000'000);
  probe_.objects["photos/uploads/a.png"] = held;
  auto c = Make();
  Verdict refused;
  std::atomic<bool> on_pool{false};
  const std::thread::id caller = std::this_thread::get_id();
  c->Confirm(Reported(), [&] {
        on_pool = std::this_thread::get_id() != caller;
        return absl::CancelledError("decided without a HEAD");
      }, refused.Callback());
  EXPECT_EQ(refused.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(on_pool);
  EXPECT_EQ(probe_.calls, 0);
  Verdict agreed;
  c->Confirm(Reported(), [] { return absl::OkStatus(); }, agreed.Callback());
  EXPECT_TRUE(agreed.Wait().ok());
  EXPECT_EQ(agreed.facts.last_modified, absl::FromUnixSeconds(1'700'000'000));
  EXPECT_EQ(probe_.calls, 1);
}

}  // namespace
}  // namespace uploadbroker::ingest
