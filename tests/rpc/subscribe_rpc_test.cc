// Subscribe through the whole broker: an OSS callback (signed with a key the
// broker trusts by explicit config) completes an upload, and a subscriber
// authenticated by API key receives the event; authentication, scope and
// draining as a backend sees them.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/broker_client.h"
#include "client/subscriber.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "config/config.h"
#include "server/server.h"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;

class SubscribeRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string yaml = absl::StrCat(
        testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/oss/callback"), R"(
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
  - {name: private, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - name: app
    api_key_sha256: )", common::HexEncode(common::Sha256("key-app")), R"(
    buckets: [photos]
    key_prefixes: [uploads/]
)");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    target_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    client_ = std::make_unique<client::BrokerClient>(target_, "key-app");
  }

  // Issues a policy for `key` and sends the callback OSS would send for it.
  std::string Upload(const std::string& key) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("photos");
    req.set_key(key);
    (*req.mutable_metadata())["user"] = "42";
    auto resp = client_->CreatePostPolicy(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    if (!resp.ok()) return "";
    std::string body = nlohmann::json{{"upload_id", resp->upload_id()}, {"bucket", "photos"},
                                      {"object", key}, {"etag", "\"E\""}, {"size", 5},
                                      {"mimeType", "image/png"}}
                           .dump();
    std::string request = testing::SignedCallback(signer_, "/oss/callback", "/oss/callback", body);
    auto c = http::RawClient::Connect(server_->http_port());
    EXPECT_NE(c, nullptr);
    if (c == nullptr) return "";
    EXPECT_TRUE(c->Send(request));
    auto reply = c->ReadResponse();
    EXPECT_TRUE(reply.has_value());
    EXPECT_EQ(reply.value_or(http::Reply{}).status, 200) << reply.value_or(http::Reply{}).body;
    return resp->upload_id();
  }

  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> Open(
      grpc::ClientContext* ctx, const std::string& api_key, const v1::SubscribeRequest& req) {
    if (!api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + api_key);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return client_->stub().Subscribe(ctx, req);
  }

  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::unique_ptr<server::Server> server_;
  std::string target_;
  std::unique_ptr<client::BrokerClient> client_;
};

TEST_F(SubscribeRpcTest, ACallbackReachesTheSubscriberWithItsCursor) {
  grpc::ClientContext ctx;
  auto reader = Open(&ctx, "key-app", {});
  reader->WaitForInitialMetadata();
  std::string id = Upload("uploads/cat.png");
  v1::SubscribeResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.event().cursor(), 1u);
  EXPECT_EQ(resp.event().type(), v1::EVENT_TYPE_UPLOAD_COMPLETED);
  const v1::Upload& u = resp.event().upload_completed().upload();
  EXPECT_EQ(u.upload_id(), id);
  EXPECT_EQ(u.state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(u.metadata().at("user"), "42");
  EXPECT_EQ(u.completion().key(), "uploads/cat.png");
  ctx.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(SubscribeRpcTest, RefusesUnauthenticatedAndOutOfScopeSubscribers) {
  {
    grpc::ClientContext ctx;
    grpc::Status st = Open(&ctx, "", {})->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    grpc::Status st = Open(&ctx, "wrong", {})->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  v1::SubscribeRequest req;
  req.mutable_filter()->add_buckets("private");
  grpc::ClientContext ctx;
  grpc::Status st = Open(&ctx, "key-app", req)->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("filter.buckets[0]"));
}

TEST_F(SubscribeRpcTest, BrokerShutdownEndsStreamsWithUnavailable) {
  grpc::ClientContext ctx;
  auto reader = Open(&ctx, "key-app", {});
  reader->WaitForInitialMetadata();
  absl::Time t0 = absl::Now();
  server_->Shutdown();
  server_->Wait();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  v1::SubscribeResponse resp;
  EXPECT_FALSE(reader->Read(&resp));
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(st.error_message(), HasSubstr("shutting down"));
}

TEST_F(SubscribeRpcTest, TheClientSubscriberDeliversEachUploadOnce) {
  client::Subscriber::Options o;
  o.target = target_;
  o.api_key = "key-app";
  o.request.set_start(v1::START_POSITION_EARLIEST);
  client::Subscriber sub(o);
  absl::Mutex mu;
  std::vector<std::string> ids;
  std::thread t([&] {
    absl::Status st = sub.Run([&](const v1::Event& e) {
      absl::MutexLock lock(&mu);
      ids.push_back(e.upload_completed().upload().upload_id());
      return absl::OkStatus();
    });
    EXPECT_TRUE(st.ok()) << st;
  });
  std::vector<std::string> sent = {Upload("uploads/a.png"), Upload("uploads/b.png"),
                                   Upload("uploads/c.png")};
  {
    absl::MutexLock lock(&mu);
    auto three = [&]() { return ids.size() >= 3; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(10)));
  }
  sub.Stop();
  t.join();
  EXPECT_EQ(ids, sent);
}

}  // namespace
}  // namespace uploadbroker
