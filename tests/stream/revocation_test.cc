// Revocation reaches open streams (#17 item 4): after the callers are
// reloaded (what SIGHUP does), a Subscribe stream whose caller is gone or
// whose API key changed ends UNAUTHENTICATED, one whose filter the new scope
// or read_callers no longer cover ends PERMISSION_DENIED, and neither
// receives an event committed after the reload; streams still covered keep
// going. Old caller snapshots are freed once no stream holds them.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/stream/test_broker.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::stream {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::AppendEvent;
using testing::Sub;
using testing::TestBroker;
using testing::TestCallers;
using testing::UploadSpec;

UploadSpec At(const std::string& bucket, const std::string& key) {
  UploadSpec s;
  s.bucket = bucket;
  s.key = key;
  return s;
}

std::string Hash(const std::string& key) { return common::HexEncode(common::Sha256(key)); }

v1::SubscribeRequest Latest() {
  v1::SubscribeRequest r;
  r.set_start(v1::START_POSITION_LATEST);
  return r;
}

config::Caller* Find(std::vector<config::Caller>& callers, const std::string& name) {
  for (config::Caller& c : callers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

class RevocationTest : public ::testing::Test {
 protected:
  RevocationTest() {
    TestBroker::Options o;
    o.db_path = dir_.File("ledger.db");
    broker_ = std::make_unique<TestBroker>(o);
  }

  std::unique_ptr<Sub> Open(const std::string& key, v1::SubscribeRequest req = Latest()) {
    auto sub = std::make_unique<Sub>(broker_->target(), key, req);
    EXPECT_GE(sub->Started(), 0);
    return sub;
  }
  uint64_t Append(const std::string& id, UploadSpec spec = {}) {
    return AppendEvent(broker_->ledger(), id, spec);
  }
  // Ends within `bound` (the stream's own deadline is 60 s); returns how.
  static grpc::Status EndsWithin(Sub& sub, absl::Duration bound = absl::Seconds(5)) {
    const absl::Time start = absl::Now();
    grpc::Status st = sub.Finish();
    EXPECT_LT(absl::Now() - start, bound) << st.error_message();
    return st;
  }

  testing::TempDir dir_;
  std::unique_ptr<TestBroker> broker_;
};

TEST_F(RevocationTest, RemovedCallerStreamEndsUnauthenticatedAndGetsNothingAfterTheReload) {
  std::unique_ptr<Sub> app = Open("key-app");
  std::unique_ptr<Sub> admin = Open("key-admin");
  const uint64_t before = Append("u-before");
  ASSERT_EQ(app->Read(1), std::vector<uint64_t>{before});
  ASSERT_EQ(admin->Read(1), std::vector<uint64_t>{before});

  std::vector<config::Caller> callers = TestCallers();
  callers.erase(callers.begin());  // "app" is removed
  broker_->Reload(callers);
  const uint64_t after = Append("u-after");

  EXPECT_TRUE(app->Read(10).empty()) << "an event committed after the reload reached the stream";
  grpc::Status st = EndsWithin(*app);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("caller 'app'"));
  EXPECT_THAT(st.error_message(), HasSubstr("revoked"));
  EXPECT_THAT(st.error_message(), Not(HasSubstr(Hash("key-app"))));
  // The caller still configured keeps its stream and sees the new event.
  EXPECT_EQ(admin->Read(1), std::vector<uint64_t>{after});
  EXPECT_TRUE(testing::Eventually([&] { return broker_->streamer().stream_count() == 1; }));
}

TEST_F(RevocationTest, RotatedApiKeyEndsTheStreamAndTheNewKeySubscribes) {
  std::unique_ptr<Sub> old_key = Open("key-app");
  std::vector<config::Caller> callers = TestCallers();
  Find(callers, "app")->api_key_sha256 = Hash("key-app-2");
  broker_->Reload(callers);
  grpc::Status st = EndsWithin(*old_key);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();

  std::unique_ptr<Sub> new_key = Open("key-app-2");
  const uint64_t c = Append("u-1");
  EXPECT_EQ(new_key->Read(1), std::vector<uint64_t>{c});
}

TEST_F(RevocationTest, KeyMovedToAnotherCallerEndsTheStream) {
  std::unique_ptr<Sub> app = Open("key-app");
  std::vector<config::Caller> callers = TestCallers();
  Find(callers, "app")->name = "app-renamed";  // same key, another identity
  broker_->Reload(callers);
  grpc::Status st = EndsWithin(*app);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("no longer names caller 'app'"));
}

TEST_F(RevocationTest, ScopeThatNoLongerCoversTheFilterEndsPermissionDenied) {
  v1::SubscribeRequest req = Latest();
  req.mutable_filter()->add_key_prefixes("uploads/app/");
  std::unique_ptr<Sub> app = Open("key-app", req);
  std::vector<config::Caller> callers = TestCallers();
  Find(callers, "app")->key_prefixes = {"uploads/app/narrow/"};
  broker_->Reload(callers);
  Append("u-after", At("photos", "uploads/app/narrow/u-after"));
  EXPECT_TRUE(app->Read(10).empty());
  grpc::Status st = EndsWithin(*app);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("configuration reload"));
  EXPECT_THAT(st.error_message(), HasSubstr("uploads/app/"));
}

TEST_F(RevocationTest, ReadCallersThatNoLongerCoverTheFilterEndPermissionDenied) {
  v1::SubscribeRequest req = Latest();
  req.mutable_filter()->add_callers("app");
  std::unique_ptr<Sub> admin = Open("key-admin", req);
  std::vector<config::Caller> callers = TestCallers();
  Find(callers, "admin")->read_callers = {};
  broker_->Reload(callers);
  Append("u-after");
  EXPECT_TRUE(admin->Read(10).empty());
  grpc::Status st = EndsWithin(*admin);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
}

TEST_F(RevocationTest, UnfilteredStreamContinuesNarrowedToTheNewScope) {
  std::unique_ptr<Sub> admin = Open("key-admin");
  std::vector<config::Caller> callers = TestCallers();
  Find(callers, "admin")->buckets = {"photos"};  // "private" is taken away
  broker_->Reload(callers);
  Append("u-private", At("private", "secret/1"));
  const uint64_t photo = Append("u-photo");
  // The private event is no longer delivered; the stream itself goes on.
  EXPECT_EQ(admin->Read(1), std::vector<uint64_t>{photo});
  EXPECT_EQ(broker_->streamer().stream_count("admin"), 1);
}

TEST_F(RevocationTest, ReloadThatChangesNothingLeavesStreamsUntouched) {
  std::unique_ptr<Sub> app = Open("key-app");
  std::unique_ptr<Sub> admin = Open("key-admin");
  std::vector<uint64_t> cursors;
  for (int i = 0; i < 20; ++i) {
    cursors.push_back(Append(absl::StrCat("u-", i)));
    broker_->Reload(TestCallers());
  }
  EXPECT_EQ(app->Read(20), cursors);
  EXPECT_EQ(admin->Read(20), cursors);
  EXPECT_EQ(broker_->streamer().stream_count(), 2u);
}

TEST_F(RevocationTest, ThousandsOfReloadsKeepOneSnapshotPlusThoseOpenCallsHold) {
  std::unique_ptr<Sub> app = Open("key-app");
  for (int i = 0; i < 2000; ++i) broker_->Reload(TestCallers());
  // The open stream moved to the current snapshot on each Recheck.
  EXPECT_EQ(broker_->auth().live_snapshots(), 1);
  // A call in flight holds the one it authenticated with until it ends.
  absl::StatusOr<auth::Principal> held = broker_->auth().Authenticate("Bearer key-admin");
  ASSERT_TRUE(held.ok());
  for (int i = 0; i < 2000; ++i) broker_->Reload(TestCallers());
  EXPECT_EQ(broker_->auth().live_snapshots(), 2);
  held = absl::UnknownError("released");
  EXPECT_EQ(broker_->auth().live_snapshots(), 1);
  const uint64_t c = Append("u-1");
  EXPECT_EQ(app->Read(1), std::vector<uint64_t>{c});
}

TEST_F(RevocationTest, ReloadRacingNewStreamsNeverLeavesARevokedStreamOpen) {
  // Streams that authenticate just before a reload and register just after
  // its Recheck are checked as they register.
  std::vector<std::unique_ptr<Sub>> subs;
  std::vector<config::Caller> without_app = TestCallers();
  without_app.erase(without_app.begin());
  std::thread reloader([&] {
    for (int i = 0; i < 200; ++i) broker_->Reload(i % 2 == 0 ? without_app : TestCallers());
    broker_->Reload(without_app);
  });
  for (int i = 0; i < 20; ++i) {
    subs.push_back(std::make_unique<Sub>(broker_->target(), "key-app", Latest()));
  }
  reloader.join();
  for (auto& sub : subs) {
    grpc::Status st = EndsWithin(*sub);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  }
  EXPECT_TRUE(testing::Eventually([&] { return broker_->streamer().stream_count("app") == 0; }));
}

}  // namespace
}  // namespace uploadbroker::stream
