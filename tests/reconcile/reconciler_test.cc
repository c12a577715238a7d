#include "reconcile/reconciler.h"

#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "tests/testing/fake_clock.h"
#include "gtest/gtest.h"
#include "ledger/sqlite_ledger.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::reconcile {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

// HeadObject answers set per key; a key never set is absent (NotFound).
class FakeProbe final : public ObjectProbe {
 public:
  absl::StatusOr<ObjectFacts> Head(const config::Bucket& bucket, const std::string& key) override {
    ++calls;
    if (on_head) on_head(key);
    auto it = answers.find(absl::StrCat(bucket.name, "/", key));
    if (it == answers.end()) return absl::NotFoundError("no such object");
    return it->second;
  }
  std::map<std::string, absl::StatusOr<ObjectFacts>> answers;
  int calls = 0;
  std::function<void(const std::string& key)> on_head;  // runs during each Head
};

ObjectFacts Facts(int64_t size, absl::Time last_modified) {
  ObjectFacts f;
  f.size = size;
  f.etag = "5EB63BBBE01EEED093CB22BB8F5ACDC3";
  f.content_type = "image/png";
  f.crc64 = "1234567890";
  f.request_id = "REQ1";
  f.last_modified = last_modified;
  return f;
}

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() : clock_(kStart) {
    config_.buckets.push_back({"photos", "cn-hangzhou", "https://oss-cn-hangzhou.aliyuncs.com",
                               "photos.oss-cn-hangzhou.aliyuncs.com", "photos.oss-cn-hangzhou.aliyuncs.com"});
    ledger::SqliteLedger::Options lo;
    lo.path = dir_.File("ledger.db");
    lo.clock = &clock_;
    auto ledger = ledger::SqliteLedger::Create(lo);
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
    Reconciler::Options ro;
    ro.grace = absl::Minutes(10);
    ro.batch = 2;  // several batches per pass in these tests
    reconciler_ = std::make_unique<Reconciler>(config_, *ledger_, probe_, metrics_, clock_, ro);
  }

  // A PENDING intent for photos/<id>.png created now, valid for 15 minutes.
  void AddIntent(const std::string& id, bool prefix = false, const std::string& bucket = "photos",
                 const std::string& key = "") {
    v1::Upload u;
    u.set_upload_id(id);
    u.set_caller("app");
    u.set_bucket(bucket);
    u.set_key(prefix ? "users/" : key.empty() ? Key(id) : key);
    u.set_key_is_prefix(prefix);
    u.set_max_size(1000);
    u.add_content_types("image/png");
    u.mutable_created_at()->set_seconds(absl::ToUnixSeconds(clock_.Now()));
    u.mutable_created_at()->set_nanos(static_cast<int32_t>(
        (clock_.Now() - absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now()))) / absl::Nanoseconds(1)));
    u.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(clock_.Now() + absl::Minutes(15)));
    ASSERT_TRUE(ledger::CreateIntentSync(*ledger_, u).ok());
  }
  static std::string Key(const std::string& id) { return "users/" + id + ".png"; }
  void Put(const std::string& id, absl::StatusOr<ObjectFacts> answer) {
    probe_.answers.emplace("photos/" + Key(id), std::move(answer));
  }
  v1::Upload Get(const std::string& id) { return *ledger_->GetUpload(id); }
  // What a callback for `key` (7 bytes, Facts' etag) records.
  void CompleteByCallback(const std::string& id, const std::string& key) {
    v1::Completion c;
    c.set_key(key);
    c.set_etag("5EB63BBBE01EEED093CB22BB8F5ACDC3");
    c.set_size(7);
    c.set_source(v1::COMPLETION_SOURCE_CALLBACK);
    ASSERT_TRUE(ledger::CompleteUploadSync(*ledger_, id, c).ok());
  }
  // The series line of upload_broker_reconciled_total{result} in /metrics.
  std::string Metric(const std::string& result) {
    std::string text = metrics_.Render();
    std::string prefix = absl::StrCat("upload_broker_reconciled_total{result=\"", result, "\"} ");
    size_t at = text.find(prefix);
    return at == std::string::npos ? "absent" : text.substr(at, text.find('\n', at) - at);
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  config::Config config_;
  metrics::Registry metrics_;
  FakeProbe probe_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerTest, LeavesIntentsAloneUntilTheGraceAfterExpiryHasPassed) {
  AddIntent("up_a");
  clock_.Advance(absl::Minutes(15 + 9));  // expired 9 minutes ago, grace is 10
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.completed + pass.expired + pass.settled + pass.failed, 0);
  EXPECT_EQ(probe_.calls, 0);
  EXPECT_EQ(Get("up_a").state(), v1::UPLOAD_STATE_PENDING);
}

TEST_F(ReconcilerTest, CompletesFromHeadObjectAndExpiresWhatIsMissing) {
  for (const char* id : {"up_found", "up_missing", "up_found2"}) AddIntent(id);
  Put("up_found", Facts(321, kStart + absl::Seconds(30)));
  Put("up_found2", Facts(1000, kStart));
  clock_.Advance(absl::Minutes(26));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.completed, 2);
  EXPECT_EQ(pass.expired, 1);
  EXPECT_EQ(pass.failed, 0);

  v1::Upload found = Get("up_found");
  EXPECT_EQ(found.state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(found.completion().source(), v1::COMPLETION_SOURCE_RECONCILED);
  EXPECT_EQ(found.completion().key(), Key("up_found"));
  EXPECT_EQ(found.completion().size(), 321);
  EXPECT_EQ(found.completion().etag(), "5EB63BBBE01EEED093CB22BB8F5ACDC3");
  EXPECT_EQ(found.completion().crc64(), "1234567890");
  EXPECT_EQ(Get("up_missing").state(), v1::UPLOAD_STATE_EXPIRED);

  // The log says the same, in order, to every subscriber.
  auto events = ledger_->ReadEvents(0, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  int completed = 0, expired = 0;
  for (const v1::Event& e : *events) {
    completed += e.type() == v1::EVENT_TYPE_UPLOAD_COMPLETED;
    expired += e.type() == v1::EVENT_TYPE_UPLOAD_EXPIRED;
  }
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(expired, 1);
  EXPECT_EQ(Metric("completed"), "upload_broker_reconciled_total{result=\"completed\"} 2");
  EXPECT_EQ(Metric("expired"), "upload_broker_reconciled_total{result=\"expired\"} 1");

  // Nothing is left to do.
  int calls = probe_.calls;
  pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.completed + pass.expired + pass.failed, 0);
  EXPECT_EQ(probe_.calls, calls);
}

TEST_F(ReconcilerTest, AnObjectOlderThanTheAuthorizationOrOutsideItsLimitsIsNotTheUpload) {
  AddIntent("up_old");
  AddIntent("up_big");
  AddIntent("up_type");
  Put("up_old", Facts(10, kStart - absl::Minutes(5)));  // written before the intent existed
  Put("up_big", Facts(1001, kStart));                   // max_size is 1000
  ObjectFacts text = Facts(10, kStart);
  text.content_type = "text/plain";
  Put("up_type", text);
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.expired, 3);
  for (const char* id : {"up_old", "up_big", "up_type"}) {
    EXPECT_EQ(Get(id).state(), v1::UPLOAD_STATE_EXPIRED) << id;
  }
}

TEST_F(ReconcilerTest, AnOssFailureLeavesTheIntentPendingUntilALaterPass) {
  AddIntent("up_a");
  Put("up_a", absl::UnavailableError("HeadObject photos/users/up_a.png: HTTP 503"));
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.failed, 1);
  EXPECT_EQ(Get("up_a").state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_EQ(Metric("failed"), "upload_broker_reconciled_total{result=\"failed\"} 1");

  probe_.answers.clear();
  Put("up_a", Facts(5, kStart + absl::Seconds(1)));
  pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.completed, 1);
  EXPECT_EQ(Get("up_a").state(), v1::UPLOAD_STATE_COMPLETED);
}

// Failures keep their place at the head of the listing (oldest first); each
// is tried once per pass, and the intents behind them are still reached.
TEST_F(ReconcilerTest, EachFailingIntentIsTriedOncePerPassAndBlocksNoOther) {
  for (int i = 0; i < 5; ++i) {
    AddIntent(absl::StrCat("up_", i));
    Put(absl::StrCat("up_", i), absl::UnavailableError("HTTP 403"));
  }
  clock_.Advance(absl::Seconds(1));
  AddIntent("up_last");  // created after the five, so listed after them
  Put("up_last", Facts(5, clock_.Now()));
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.failed, 5);
  EXPECT_EQ(pass.completed, 1);
  EXPECT_EQ(probe_.calls, 6);
  EXPECT_EQ(Get("up_last").state(), v1::UPLOAD_STATE_COMPLETED);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Get(absl::StrCat("up_", i)).state(), v1::UPLOAD_STATE_PENDING);
}

TEST_F(ReconcilerTest, PrefixAuthorizationsAndUnknownBucketsAreNotProbed) {
  AddIntent("up_prefix", /*prefix=*/true);
  AddIntent("up_gone", false, "removed-bucket");
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.expired, 1);
  EXPECT_EQ(pass.failed, 1);
  EXPECT_EQ(probe_.calls, 0);
  EXPECT_EQ(Get("up_prefix").state(), v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(Get("up_gone").state(), v1::UPLOAD_STATE_PENDING);
}

// The callback lands while the reconciler is asking OSS, after it listed
// the intent: the reconciler's write re-checks the intent inside its
// transaction and appends nothing, whether it meant to complete or expire.
TEST_F(ReconcilerTest, ACallbackThatSettlesTheIntentMeanwhileWins) {
  AddIntent("up_found");
  AddIntent("up_missing");
  Put("up_found", Facts(7, kStart));
  probe_.on_head = [this](const std::string& key) {
    const std::string id = key == Key("up_found") ? "up_found" : "up_missing";
    CompleteByCallback(id, key);
  };
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.settled, 2);
  EXPECT_EQ(pass.completed + pass.expired + pass.failed, 0);
  for (const char* id : {"up_found", "up_missing"}) {
    EXPECT_EQ(Get(id).state(), v1::UPLOAD_STATE_COMPLETED) << id;
    EXPECT_EQ(Get(id).completion().source(), v1::COMPLETION_SOURCE_CALLBACK) << id;
  }
  auto events = ledger_->ReadEvents(0, 10);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 2u);  // the callbacks' two, nothing from the reconciler
}

// One object, several authorizations for its key: it is reported once, for
// the newest authorization issued before it was written.
TEST_F(ReconcilerTest, AnObjectIsTheUploadOfTheNewestAuthorizationIssuedBeforeIt) {
  const std::string key = "users/avatar.png";
  AddIntent("up_first", false, "photos", key);  // abandoned
  clock_.Advance(absl::Minutes(1));
  AddIntent("up_second", false, "photos", key);  // used; its callback failed
  clock_.Advance(absl::Seconds(30));
  probe_.answers.emplace("photos/" + key, Facts(50, clock_.Now()));
  clock_.Advance(absl::Minutes(1));
  AddIntent("up_third", false, "photos", key);  // issued after the write, unused
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.completed, 1);
  EXPECT_EQ(pass.expired, 2);
  EXPECT_EQ(Get("up_first").state(), v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(Get("up_second").state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(Get("up_third").state(), v1::UPLOAD_STATE_EXPIRED);
}

// An abandoned authorization does not take an object a later one reported
// through its callback, even in the same second.
TEST_F(ReconcilerTest, AnObjectAlreadyReportedForALaterAuthorizationIsNotReportedAgain) {
  const std::string key = "users/avatar.png";
  AddIntent("up_abandoned", false, "photos", key);
  clock_.Advance(absl::Milliseconds(300));
  AddIntent("up_used", false, "photos", key);
  CompleteByCallback("up_used", key);
  probe_.answers.emplace("photos/" + key, Facts(7, clock_.Now()));
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.expired, 1);
  EXPECT_EQ(Get("up_abandoned").state(), v1::UPLOAD_STATE_EXPIRED);
  auto events = ledger_->ReadEvents(0, 10);
  ASSERT_TRUE(events.ok());
  int completed = 0;
  for (const v1::Event& e : *events) completed += e.type() == v1::EVENT_TYPE_UPLOAD_COMPLETED;
  EXPECT_EQ(completed, 1);
}

TEST_F(ReconcilerTest, RunsInTheBackgroundAndStops) {
  AddIntent("up_a");
  Put("up_a", Facts(5, kStart));
  clock_.Advance(absl::Hours(1));
  Reconciler::Options ro;
  ro.interval = absl::Milliseconds(20);
  ro.grace = absl::Minutes(10);
  metrics::Registry metrics;  // the fixture's already holds the reconciler's counter
  // Woken by the commit that appends the completion, not by polling.
  absl::Notification committed;
  const int listener = ledger_->AddListener([&](uint64_t) {
    if (!committed.HasBeenNotified()) committed.Notify();
  });
  Reconciler background(config_, *ledger_, probe_, metrics, clock_, ro);
  background.Start();
  EXPECT_TRUE(committed.WaitForNotificationWithTimeout(absl::Seconds(60)));
  background.Stop();
  ledger_->RemoveListener(listener);
  EXPECT_EQ(Get("up_a").state(), v1::UPLOAD_STATE_COMPLETED);
}

}  // namespace
}  // namespace uploadbroker::reconcile
