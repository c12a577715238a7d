// The edges where the reconciler and OSS's callbacks meet, with an injected
// clock: the clock-skew allowance, the grace period's ends, a callback that
// arrives late (after expiry, within the grace), one that arrives after the
// reconciler expired the intent, and a callback naming the wrong bucket,
// sent over HTTP to the real listener and handler.
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "callback/verifier.h"
#include "common/clock.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "http/server.h"
#include "ingest/callback_handler.h"
#include "ledger/sqlite_ledger.h"
#include "metrics/registry.h"
#include "nlohmann/json.hpp"
#include "reconcile/reconciler.h"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::reconcile {
namespace {

using ::testing::HasSubstr;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);
constexpr char kKeyUrl[] = "http://127.0.0.1:9/sim_pub_key.pem";
constexpr char kEtag[] = "5EB63BBBE01EEED093CB22BB8F5ACDC3";

class OneObjectProbe final : public ObjectProbe {
 public:
  absl::StatusOr<ObjectFacts> Head(const config::Bucket& bucket, const std::string& key) override {
    ++calls;
    auto it = objects.find(absl::StrCat(bucket.name, "/", key));
    if (it == objects.end()) return absl::NotFoundError("no such object");
    return it->second;
  }
  std::map<std::string, ObjectFacts> objects;  // "bucket/key"
  int calls = 0;
};

class ReconcilerBoundaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"photos", "other"}) {
      config_.buckets.push_back({name, "cn-hangzhou", "https://oss-cn-hangzhou.aliyuncs.com",
                                 absl::StrCat(name, ".oss-cn-hangzhou.aliyuncs.com"),
                                 absl::StrCat(name, ".oss-cn-hangzhou.aliyuncs.com")});
    }
    ledger::SqliteLedger::Options lo;
    lo.path = dir_.File("ledger.db");
    lo.clock = &clock_;
    auto ledger = ledger::SqliteLedger::Create(lo);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
    Reconciler::Options ro;
    ro.grace = absl::Minutes(10);
    ro.clock_skew = absl::Seconds(5);
    reconciler_ = std::make_unique<Reconciler>(config_, *ledger_, probe_, reconcile_metrics_, clock_, ro);

    std::vector<callback::TrustedKey> keys;
    keys.push_back({kKeyUrl, signer_.Public()});
    auto verifier = callback::Verifier::Create("/cb", std::move(keys));
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = std::make_unique<callback::Verifier>(*std::move(verifier));
    handler_ = std::make_unique<ingest::CallbackHandler>(*verifier_, *ledger_, metrics_,
                                                         std::map<std::string, std::string>{},
                                                         /*confirmer=*/nullptr);  // races, not bucket checks
    http::ServerOptions so;
    so.listen = "127.0.0.1:0";
    auto server = http::Server::Create(so, [this](http::Request req, http::Responder respond) {
      handler_->Handle(std::move(req), std::move(respond));
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // A PENDING intent for photos/<id>.png, created now, valid 15 minutes.
  void AddIntent(const std::string& id) {
    v1::Upload u;
    u.set_upload_id(id);
    u.set_caller("app");
    u.set_bucket("photos");
    u.set_key(Key(id));
    u.set_max_size(1000);
    u.mutable_created_at()->set_seconds(absl::ToUnixSeconds(clock_.Now()));
    u.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(clock_.Now() + absl::Minutes(15)));
    ASSERT_TRUE(ledger::CreateIntentSync(*ledger_, u).ok());
  }
  static std::string Key(const std::string& id) { return "users/" + id + ".png"; }
  void PutObject(const std::string& id, absl::Time last_modified) {
    ObjectFacts f;
    f.size = 7;
    f.etag = kEtag;
    f.content_type = "image/png";
    f.last_modified = last_modified;
    probe_.objects["photos/" + Key(id)] = f;
  }
  v1::Upload Get(const std::string& id) { return *ledger_->GetUpload(id); }
  size_t EventCount() {
    auto events = ledger_->ReadEvents(0, 100);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? events->size() : 0;
  }

  // OSS's callback for `id`'s object, sent over HTTP; the answer.
  http::Reply Callback(const std::string& id, const std::string& bucket = "photos") {
    std::string body = nlohmann::json{{"upload_id", id}, {"bucket", bucket}, {"object", Key(id)},
                                      {"size", 7}, {"etag", kEtag}, {"mimeType", "image/png"}}
                           .dump();
    auto c = http::RawClient::Connect(server_->port());
    EXPECT_NE(c, nullptr);
    if (c == nullptr) return {};
    c->Send(absl::StrCat("POST /cb HTTP/1.1\r\nHost: broker\r\nConnection: close\r\n",
                         "Authorization: ", signer_.Authorization(absl::StrCat("/cb\n", body)),
                         "\r\nx-oss-pub-key-url: ", common::Base64Encode(kKeyUrl),
                         "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                         "\r\n\r\n", body));
    auto reply = c->ReadResponse(absl::Seconds(60));
    EXPECT_TRUE(reply.has_value()) << "no answer within 60 s";
    return reply.value_or(http::Reply{});
  }

  testing::TempDir dir_;
  testing::FakeClock clock_{kStart};
  config::Config config_;
  metrics::Registry metrics_;
  metrics::Registry reconcile_metrics_;
  OneObjectProbe probe_;
  callback::TestSigner signer_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<callback::Verifier> verifier_;
  std::unique_ptr<ingest::CallbackHandler> handler_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(ReconcilerBoundaryTest, AnObjectWrittenExactlyTheSkewBeforeTheIntentIsTheUpload) {
  AddIntent("up_edge");
  AddIntent("up_past");
  PutObject("up_edge", kStart - absl::Seconds(5));  // OSS's clock 5 s behind ours
  PutObject("up_past", kStart - absl::Seconds(6));  // one second more: an older object
  clock_.Advance(absl::Hours(1));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.completed, 1);
  EXPECT_EQ(pass.expired, 1);
  EXPECT_EQ(Get("up_edge").state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(Get("up_edge").completion().source(), v1::COMPLETION_SOURCE_RECONCILED);
  EXPECT_EQ(Get("up_past").state(), v1::UPLOAD_STATE_EXPIRED);
}

TEST_F(ReconcilerBoundaryTest, TheGraceEndsExactlyGraceAfterExpiry) {
  AddIntent("up_a");
  PutObject("up_a", kStart + absl::Seconds(1));
  clock_.Advance(absl::Minutes(15 + 10) - absl::Seconds(1));
  EXPECT_EQ(reconciler_->RunOnce().completed, 0);
  EXPECT_EQ(probe_.calls, 0) << "probed before the grace ended";
  clock_.Advance(absl::Seconds(1));  // expiry + grace, to the second
  EXPECT_EQ(reconciler_->RunOnce().completed, 1);
  EXPECT_EQ(probe_.calls, 1);
}

TEST_F(ReconcilerBoundaryTest, ALateCallbackWithinTheGraceCompletesTheUpload) {
  AddIntent("up_late");
  PutObject("up_late", kStart + absl::Minutes(20));
  clock_.Advance(absl::Minutes(15 + 9));  // expired 9 minutes ago; grace is 10
  http::Reply reply = Callback("up_late");
  EXPECT_EQ(reply.status, 200) << reply.body;
  v1::Upload up = Get("up_late");
  EXPECT_EQ(up.state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(up.completion().source(), v1::COMPLETION_SOURCE_CALLBACK);
  // After the grace the reconciler has nothing left to do for it.
  clock_.Advance(absl::Minutes(2));
  Reconciler::Pass pass = reconciler_->RunOnce();
  EXPECT_EQ(pass.completed + pass.expired + pass.failed, 0);
  EXPECT_EQ(probe_.calls, 0);
  EXPECT_EQ(EventCount(), 1u);
}

TEST_F(ReconcilerBoundaryTest, ACallbackAfterTheReconcilerExpiredTheIntentIsRefused) {
  AddIntent("up_gone");  // OSS has no object: the reconciler expires it
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(reconciler_->RunOnce().expired, 1);
  ASSERT_EQ(Get("up_gone").state(), v1::UPLOAD_STATE_EXPIRED);
  http::Reply reply = Callback("up_gone");
  // The one refusal (the sender learns nothing of the intent's state).
  EXPECT_EQ(reply.status, 409) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("the callback does not match an upload this broker issued"));
  EXPECT_EQ(Get("up_gone").state(), v1::UPLOAD_STATE_EXPIRED);
  EXPECT_EQ(EventCount(), 1u) << "only the UploadExpired event";
}

TEST_F(ReconcilerBoundaryTest, ACallbackNamingAnotherBucketIsRefusedAndOssDecides) {
  AddIntent("up_b");
  PutObject("up_b", kStart + absl::Seconds(30));
  http::Reply reply = Callback("up_b", "other");
  EXPECT_EQ(reply.status, 409) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("the callback does not match an upload this broker issued"));
  EXPECT_EQ(Get("up_b").state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_EQ(EventCount(), 0u);
  // The object the intent authorized is in its own bucket: the reconciler
  // finds it there once the grace has passed.
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(reconciler_->RunOnce().completed, 1);
  EXPECT_EQ(Get("up_b").state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(Get("up_b").completion().source(), v1::COMPLETION_SOURCE_RECONCILED);
}

}  // namespace
}  // namespace uploadbroker::reconcile
