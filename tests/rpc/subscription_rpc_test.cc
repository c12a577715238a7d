// Durable subscriptions through the whole broker (SQLite ledger): the
// subscription RPCs and Consume as a backend sees them, with bad input
// refused precisely and nothing changed by it.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/rpc/consume_fixture.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;

class SubscriptionRpcTest : public ::testing::Test {
 protected:
  // The config with caller app's key prefixes and api key as given.
  std::string Yaml(const std::string& app_prefixes, const std::string& app_key) {
    return absl::StrCat(
        testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/cb"), R"(
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
  - {name: private, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - name: app
    api_key_sha256: )", common::HexEncode(common::Sha256(app_key)), R"(
    buckets: [photos]
    key_prefixes: [)", app_prefixes, R"(]
  - name: other
    api_key_sha256: )", common::HexEncode(common::Sha256("key-other")), R"(
    buckets: [photos, private]
reconcile: {enabled: false}
)");
  }

  // What SIGHUP does: the callers section reloaded.
  absl::Status Reload(const std::string& app_prefixes, const std::string& app_key) {
    auto fresh = config::LoadConfig(dir_.WriteFile("reload.yaml", Yaml(app_prefixes, app_key)));
    if (!fresh.ok()) return fresh.status();
    reloaded_ = std::make_unique<config::Config>(*std::move(fresh));
    return server_->ReloadCallers(*reloaded_);
  }

  void SetUp() override {
    std::string yaml = Yaml("uploads/", "key-app");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    target_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    app_ = std::make_unique<client::BrokerClient>(target_, "key-app");
    other_ = std::make_unique<client::BrokerClient>(target_, "key-other");
  }

  std::string Upload(const std::string& key) {
    return testing::CompleteUpload(*app_, server_->http_port(), signer_, "photos", key);
  }

  grpc::Status Create(client::BrokerClient& c, const v1::CreateSubscriptionRequest& req,
                      v1::CreateSubscriptionResponse* resp = nullptr) {
    grpc::ClientContext ctx;
    c.Prepare(&ctx);
    v1::CreateSubscriptionResponse ignored;
    return c.stub().CreateSubscription(&ctx, req, resp != nullptr ? resp : &ignored);
  }
  grpc::Status Create(const std::string& name, uint32_t ack_deadline = 0) {
    v1::CreateSubscriptionRequest req;
    req.set_name(name);
    req.set_ack_deadline_seconds(ack_deadline);
    return Create(*app_, req);
  }
  absl::StatusOr<v1::Subscription> Get(client::BrokerClient& c, const std::string& name) {
    grpc::ClientContext ctx;
    c.Prepare(&ctx);
    v1::GetSubscriptionRequest req;
    req.set_name(name);
    v1::GetSubscriptionResponse resp;
    grpc::Status st = c.stub().GetSubscription(&ctx, req, &resp);
    if (!st.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
    }
    return resp.subscription();
  }
  std::vector<v1::Subscription> List(client::BrokerClient& c) {
    grpc::ClientContext ctx;
    c.Prepare(&ctx);
    v1::ListSubscriptionsResponse resp;
    EXPECT_TRUE(c.stub().ListSubscriptions(&ctx, {}, &resp).ok());
    return {resp.subscriptions().begin(), resp.subscriptions().end()};
  }
  std::unique_ptr<testing::ConsumeStream> Consume(const std::string& key, const std::string& name,
                                                  uint32_t max_in_flight = 0) {
    return std::make_unique<testing::ConsumeStream>(target_, key, name, max_in_flight);
  }

  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::unique_ptr<server::Server> server_;
  std::string target_;
  std::unique_ptr<client::BrokerClient> app_;
  std::unique_ptr<client::BrokerClient> other_;
  std::unique_ptr<config::Config> reloaded_;
};

TEST_F(SubscriptionRpcTest, EventsAreDeliveredInCursorOrderAndAcksMoveTheFloor) {
  ASSERT_TRUE(Create("orders").ok());
  auto stream = Consume("key-app", "orders");
  std::vector<std::string> ids = {Upload("uploads/a.png"), Upload("uploads/b.png"),
                                  Upload("uploads/c.png")};
  std::vector<v1::Delivery> got = stream->Take(3);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].cursor(), i + 1);
    EXPECT_EQ(got[i].attempt(), 1u);
    EXPECT_EQ(got[i].event().cursor(), got[i].cursor());
    EXPECT_EQ(got[i].event().upload_completed().upload().upload_id(), ids[i]);
    EXPECT_EQ(got[i].cloud_event_id(), ids[i] + ".completed");
    EXPECT_EQ(got[i].cloud_event_type(), "com.uploadbroker.upload.completed");
    EXPECT_GT(got[i].lease_until().seconds(), absl::ToUnixSeconds(absl::Now()));
  }
  ASSERT_TRUE(stream->Ack({1, 2, 3}));
  absl::StatusOr<v1::Subscription> sub;
  for (int i = 0; i < 100; ++i) {
    sub = Get(*app_, "orders");
    if (sub.ok() && sub->ack_floor() == 3) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(sub->ack_floor(), 3u);
  EXPECT_EQ(sub->newest_cursor(), 3u);
  EXPECT_TRUE(stream->Finish().ok());
  // Nothing acknowledged comes back.
  auto again = Consume("key-app", "orders");
  Upload("uploads/d.png");
  std::vector<v1::Delivery> next = again->Take(1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].cursor(), 4u);
}

TEST_F(SubscriptionRpcTest, AnUnackedEventGoesToTheNextConsumerWhenTheFirstGoesAway) {
  ASSERT_TRUE(Create("jobs").ok());
  Upload("uploads/a.png");
  Upload("uploads/b.png");
  {
    auto first = Consume("key-app", "jobs");
    std::vector<v1::Delivery> got = first->Take(2);
    ASSERT_EQ(got.size(), 2u);
    ASSERT_TRUE(first->Ack({1}));
    first->Cancel();  // the consumer dies holding cursor 2
  }
  auto second = Consume("key-app", "jobs");
  std::vector<v1::Delivery> got = second->Take(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].cursor(), 2u);
  EXPECT_EQ(got[0].attempt(), 2u);
}

TEST_F(SubscriptionRpcTest, ANackIsRedeliveredAfterItsDelay) {
  ASSERT_TRUE(Create("retry").ok());
  Upload("uploads/a.png");
  auto stream = Consume("key-app", "retry");
  ASSERT_EQ(stream->Take(1).size(), 1u);
  v1::ConsumeRequest nack;
  nack.add_nacks()->set_cursor(1);
  nack.mutable_nacks(0)->set_message("database down");
  nack.mutable_nacks(0)->set_retry_after_seconds(1);
  ASSERT_TRUE(stream->Send(nack));
  std::vector<v1::Delivery> again = stream->Take(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].cursor(), 1u);
  EXPECT_EQ(again[0].attempt(), 2u);
}

TEST_F(SubscriptionRpcTest, CompetingConsumersGetDifferentEvents) {
  ASSERT_TRUE(Create("split").ok());
  for (int i = 0; i < 6; ++i) Upload(absl::StrCat("uploads/", i));
  auto a = Consume("key-app", "split", 3);
  auto b = Consume("key-app", "split", 3);
  std::vector<v1::Delivery> got_a = a->Take(3);
  std::vector<v1::Delivery> got_b = b->Take(3);
  std::set<uint64_t> all;
  for (const auto& d : got_a) all.insert(d.cursor());
  for (const auto& d : got_b) all.insert(d.cursor());
  EXPECT_EQ(all, (std::set<uint64_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(SubscriptionRpcTest, CreatingTheSameSubscriptionTwiceIsNotAnError) {
  v1::CreateSubscriptionRequest req;
  req.set_name("twice");
  req.mutable_filter()->add_key_prefixes("uploads/x/");
  v1::CreateSubscriptionResponse first, second;
  ASSERT_TRUE(Create(*app_, req, &first).ok());
  EXPECT_TRUE(first.created());
  ASSERT_TRUE(Create(*app_, req, &second).ok());
  EXPECT_FALSE(second.created());
  req.set_ack_deadline_seconds(5);
  grpc::Status st = Create(*app_, req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  // Names are per caller: the other caller may use the same one.
  v1::CreateSubscriptionRequest theirs;
  theirs.set_name("twice");
  EXPECT_TRUE(Create(*other_, theirs).ok());
}

TEST_F(SubscriptionRpcTest, BadCreateRequestsAreRefusedAndCreateNothing) {
  struct Case {
    std::string what;
    v1::CreateSubscriptionRequest req;
    grpc::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases;
  auto add = [&](std::string what, grpc::StatusCode code, std::string message, auto fill) {
    Case c{std::move(what), {}, code, std::move(message)};
    c.req.set_name("ok-name");
    fill(c.req);
    cases.push_back(std::move(c));
  };
  add("no name", grpc::StatusCode::INVALID_ARGUMENT, "name: required",
      [](auto& r) { r.clear_name(); });
  add("bad name", grpc::StatusCode::INVALID_ARGUMENT, "name: only letters",
      [](auto& r) { r.set_name("../x"); });
  add("long name", grpc::StatusCode::INVALID_ARGUMENT, "name: at most 128",
      [](auto& r) { r.set_name(std::string(129, 'a')); });
  add("bucket outside scope", grpc::StatusCode::PERMISSION_DENIED, "filter.buckets[0]",
      [](auto& r) { r.mutable_filter()->add_buckets("private"); });
  add("prefix outside scope", grpc::StatusCode::PERMISSION_DENIED, "filter.key_prefixes[0]",
      [](auto& r) { r.mutable_filter()->add_key_prefixes("secret/"); });
  add("caller it may not read", grpc::StatusCode::PERMISSION_DENIED, "filter.callers[0]",
      [](auto& r) { r.mutable_filter()->add_callers("other"); });
  add("huge deadline", grpc::StatusCode::INVALID_ARGUMENT, "ack_deadline_seconds: at most 600",
      [](auto& r) { r.set_ack_deadline_seconds(601); });
  add("huge attempts", grpc::StatusCode::INVALID_ARGUMENT, "max_delivery_attempts: at most 1000",
      [](auto& r) { r.set_max_delivery_attempts(100000); });
  add("cursor beyond the log", grpc::StatusCode::INVALID_ARGUMENT, "beyond the newest cursor",
      [](auto& r) {
        r.set_start(v1::START_POSITION_AFTER_CURSOR);
        r.set_after_cursor(99);
      });
  add("cursor without AFTER_CURSOR", grpc::StatusCode::INVALID_ARGUMENT, "after_cursor: only",
      [](auto& r) { r.set_after_cursor(1); });
  for (const Case& c : cases) {
    grpc::Status st = Create(*app_, c.req);
    EXPECT_EQ(st.error_code(), c.code) << c.what << ": " << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr(c.message)) << c.what;
  }
  EXPECT_TRUE(List(*app_).empty());
}

TEST_F(SubscriptionRpcTest, AnotherCallersSubscriptionLooksUnknown) {
  ASSERT_TRUE(Create("mine").ok());
  absl::StatusOr<v1::Subscription> theirs = Get(*other_, "mine");
  absl::StatusOr<v1::Subscription> unknown = Get(*other_, "nothing");
  ASSERT_TRUE(absl::IsNotFound(theirs.status())) << theirs.status();
  ASSERT_TRUE(absl::IsNotFound(unknown.status())) << unknown.status();
  EXPECT_EQ(theirs.status().message(),
            absl::StrReplaceAll(unknown.status().message(), {{"nothing", "mine"}}));
  EXPECT_TRUE(List(*other_).empty());
  {
    grpc::ClientContext ctx;
    other_->Prepare(&ctx);
    v1::DeleteSubscriptionRequest req;
    req.set_name("mine");
    v1::DeleteSubscriptionResponse resp;
    grpc::Status st = other_->stub().DeleteSubscription(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), theirs.status().message());
  }
  grpc::Status consumed = Consume("key-other", "mine")->WaitForEnd();
  EXPECT_EQ(consumed.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(consumed.error_message(), theirs.status().message());
  {
    grpc::ClientContext ctx;
    other_->Prepare(&ctx);
    v1::ListDeadLettersRequest req;
    req.set_subscription("mine");
    v1::ListDeadLettersResponse resp;
    grpc::Status st = other_->stub().ListDeadLetters(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(st.error_message(), theirs.status().message());
  }
  // Still there for its owner.
  EXPECT_TRUE(Get(*app_, "mine").ok());
}

TEST_F(SubscriptionRpcTest, AcksForCursorsNeverDeliveredEndTheStreamNamingThem) {
  ASSERT_TRUE(Create("acks").ok());
  Upload("uploads/a.png");
  auto stream = Consume("key-app", "acks");
  ASSERT_EQ(stream->Take(1).size(), 1u);
  // Cursor 1 was delivered; 7 and 9 never were (there is no such event).
  ASSERT_TRUE(stream->Ack({7, 9}));
  grpc::Status st = stream->WaitForEnd();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("ack_cursors: cursors 7, 9 were never delivered"));
  EXPECT_THAT(st.error_message(), HasSubstr("'acks'"));
  absl::StatusOr<v1::Subscription> sub = Get(*app_, "acks");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->ack_floor(), 0u);
  EXPECT_EQ(sub->acked_above_floor(), 0);
}

TEST_F(SubscriptionRpcTest, HugeAckListsAreRefusedBeforeAnythingChanges) {
  ASSERT_TRUE(Create("huge").ok());
  Upload("uploads/a.png");
  auto stream = Consume("key-app", "huge");
  ASSERT_EQ(stream->Take(1).size(), 1u);
  v1::ConsumeRequest req;
  // The one delivered cursor is among them.
  for (uint64_t c = 1; c <= 10001; ++c) req.add_ack_cursors(c);
  ASSERT_TRUE(stream->Send(req));
  grpc::Status st = stream->WaitForEnd();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("10001 cursors"));
  EXPECT_THAT(st.error_message(), HasSubstr("at most 10000"));
  absl::StatusOr<v1::Subscription> sub = Get(*app_, "huge");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->ack_floor(), 0u);  // cursor 1 was not acknowledged
}

TEST_F(SubscriptionRpcTest, MalformedConsumeRequestsArePrecise) {
  ASSERT_TRUE(Create("malformed").ok());
  {
    grpc::Status st = Consume("key-app", "")->WaitForEnd();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("subscription: required"));
  }
  {
    grpc::Status st = Consume("key-app", "malformed", 5000)->WaitForEnd();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("max_in_flight: at most 1000"));
  }
  {
    grpc::Status st = Consume("", "malformed")->WaitForEnd();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    auto stream = Consume("key-app", "malformed");
    v1::ConsumeRequest ext;
    ext.add_extensions()->add_cursors(1);
    ext.mutable_extensions(0)->set_seconds(100000);
    ASSERT_TRUE(stream->Send(ext));
    grpc::Status st = stream->WaitForEnd();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("extensions[0].seconds"));
  }
}

TEST_F(SubscriptionRpcTest, DeleteRemovesItAndRedriveNeedsATarget) {
  ASSERT_TRUE(Create("gone").ok());
  {
    grpc::ClientContext ctx;
    app_->Prepare(&ctx);
    v1::RedriveDeadLettersRequest req;
    req.set_subscription("gone");
    v1::RedriveDeadLettersResponse resp;
    grpc::Status st = app_->stub().RedriveDeadLetters(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("set exactly one"));
  }
  {
    grpc::ClientContext ctx;
    app_->Prepare(&ctx);
    v1::DeleteSubscriptionRequest req;
    req.set_name("gone");
    v1::DeleteSubscriptionResponse resp;
    ASSERT_TRUE(app_->stub().DeleteSubscription(&ctx, req, &resp).ok());
  }
  EXPECT_TRUE(absl::IsNotFound(Get(*app_, "gone").status()));
}

TEST_F(SubscriptionRpcTest, AReloadThatRevokesTheKeyOrNarrowsTheScopeEndsTheStream) {
  v1::CreateSubscriptionRequest req;
  req.set_name("scoped");
  req.mutable_filter()->add_key_prefixes("uploads/in/");
  ASSERT_TRUE(Create(*app_, req).ok());
  ASSERT_TRUE(Create("wide").ok());
  auto scoped = Consume("key-app", "scoped");
  auto wide = Consume("key-app", "wide");
  Upload("uploads/in/a.png");
  ASSERT_EQ(scoped->Take(1).size(), 1u);
  ASSERT_EQ(wide->Take(1).size(), 1u);
  // The scope no longer covers uploads/in/: only the scoped stream ends.
  ASSERT_TRUE(Reload("uploads/out/", "key-app").ok());
  grpc::Status narrowed = scoped->WaitForEnd();
  EXPECT_EQ(narrowed.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(narrowed.error_message(), HasSubstr("subscription 'scoped'"));
  // The key is revoked: the other stream ends too.
  ASSERT_TRUE(Reload("uploads/out/", "another-key").ok());
  grpc::Status revoked = wide->WaitForEnd();
  EXPECT_EQ(revoked.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace uploadbroker
