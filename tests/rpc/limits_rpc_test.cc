// Bounded requests through a real broker over gRPC: caps on repeated fields
// (INVALID_ARGUMENT naming the field, the cap and the count), repeats
// dropped before they reach a policy, the gRPC receive limit, the cap on a
// caller's concurrent Subscribe streams, ListUploads pages bounded in
// bytes, and a subscriber whose client limit is smaller than a message.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/broker_client.h"
#include "client/subscriber.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/testing/http_get.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;

std::string Hash(const std::string& key) { return common::HexEncode(common::Sha256(key)); }

class LimitsRpcTest : public ::testing::Test {
 protected:
  void Start(const std::string& limits = "") {
    std::string yaml = absl::StrCat(R"(
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0", metrics_on_public_port: true}
callback: {url: "https://broker.example.com/oss/callback"}
ledger: {path: )", dir_.File("ledger.db"), R"(}
credentials: {access_key_id_file: )", dir_.WriteFile("ak", "LTAI5tTestId"),
                                    ", access_key_secret_file: ", dir_.WriteFile("sk", "secret"), R"(}
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: app, api_key_sha256: )", Hash("key-app"), R"(, buckets: [photos]}
  - {name: batch, api_key_sha256: )", Hash("key-batch"), R"(, buckets: [photos]}
)", limits);
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    server::Options opts;
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    target_ = absl::StrCat("127.0.0.1:", server_->grpc_port());
    app_ = std::make_unique<client::BrokerClient>(target_, "key-app");
    batch_ = std::make_unique<client::BrokerClient>(target_, "key-batch");
  }

  static v1::CreatePostPolicyRequest PostReq(const std::string& key = "uploads/a.png") {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("photos");
    req.set_key(key);
    return req;
  }

  // A policy whose intent (and so its event) is large: 32 metadata values of
  // 1 KiB, ~33 KB in all.
  std::string IssueLarge(const std::string& key) {
    v1::CreatePostPolicyRequest req = PostReq(key);
    for (int m = 0; m < 32; ++m) (*req.mutable_metadata())[absl::StrCat("m", m)] = std::string(1024, 'v');
    auto resp = app_->CreatePostPolicy(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->upload_id() : "";
  }

  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> Open(grpc::ClientContext* ctx,
                                                                   const std::string& key) {
    ctx->AddMetadata("authorization", "Bearer " + key);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return app_->stub().Subscribe(ctx, v1::SubscribeRequest());
  }

  static void ExpectError(const absl::Status& st, absl::StatusCode code, const std::string& text) {
    EXPECT_EQ(st.code(), code) << st;
    EXPECT_THAT(st.message(), HasSubstr(text));
  }

  testing::TempDir dir_;
  std::unique_ptr<server::Server> server_;
  std::string target_;
  std::unique_ptr<client::BrokerClient> app_, batch_;
};

TEST_F(LimitsRpcTest, RepeatedFieldsOverTheirCapNameFieldCapAndCount) {
  Start();
  v1::CreatePostPolicyRequest req = PostReq();
  for (int i = 0; i < 33; ++i) req.add_content_types(absl::StrCat("image/x", i));
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kInvalidArgument,
              "content_types: 33 entries, at most 32 allowed");

  req = PostReq();
  for (int i = 0; i < 33; ++i) (*req.mutable_metadata())[absl::StrCat("k", i)] = "v";
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kInvalidArgument,
              "metadata: 33 entries, at most 32 allowed");
  req = PostReq();
  (*req.mutable_metadata())["big"] = std::string(1025, 'v');
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kInvalidArgument,
              "metadata[big]: value must be at most 1024 bytes");

  v1::ListUploadsRequest list;
  for (int i = 0; i < 65; ++i) list.add_buckets("photos");
  ExpectError(app_->ListUploads(list).status(), absl::StatusCode::kInvalidArgument,
              "buckets: 65 entries, at most 64 allowed");

  struct FilterCase {
    std::function<void(v1::EventFilter&)> fill;
    std::string expect;
  };
  const FilterCase cases[] = {
      {[](v1::EventFilter& f) { for (int i = 0; i < 65; ++i) f.add_buckets("photos"); },
       "filter.buckets: 65 entries, at most 64 allowed"},
      {[](v1::EventFilter& f) { for (int i = 0; i < 100; ++i) f.add_key_prefixes("uploads/"); },
       "filter.key_prefixes: 100 entries, at most 64 allowed"},
      {[](v1::EventFilter& f) { for (int i = 0; i < 65; ++i) f.add_callers("app"); },
       "filter.callers: 65 entries, at most 64 allowed"},
      {[](v1::EventFilter& f) { for (int i = 0; i < 1000; ++i) f.add_types(v1::EVENT_TYPE_UPLOAD_EXPIRED); },
       "filter.types: 1000 entries, at most 64 allowed"},
      {[](v1::EventFilter& f) { for (int i = 0; i < 33; ++i) (*f.mutable_metadata())[absl::StrCat(i)] = "v"; },
       "filter.metadata: 33 entries, at most 32 allowed"},
      {[](v1::EventFilter& f) { f.add_key_prefixes(std::string(1025, 'p')); },
       "filter.key_prefixes[0]: 1025 bytes, at most 1024 allowed"},
  };
  for (const FilterCase& c : cases) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer key-app");
    v1::SubscribeRequest sub;
    c.fill(*sub.mutable_filter());
    grpc::Status st = app_->stub().Subscribe(&ctx, sub)->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.expect;
    EXPECT_THAT(st.error_message(), HasSubstr(c.expect));
  }
  // Each refusal is counted by method and code (and logged).
  const std::string metrics =
      testing::HttpGet(absl::StrCat("http://127.0.0.1:", server_->http_port(), "/metrics"));
  EXPECT_THAT(metrics, HasSubstr(R"(upload_broker_rpc_refused_total{method="CreatePostPolicy",code="INVALID_ARGUMENT"} 3)"));
  EXPECT_THAT(metrics, HasSubstr(R"(upload_broker_rpc_refused_total{method="ListUploads",code="INVALID_ARGUMENT"} 1)"));
  EXPECT_THAT(metrics, HasSubstr(R"(upload_broker_rpc_refused_total{method="Subscribe",code="INVALID_ARGUMENT"} 6)"));
}

TEST_F(LimitsRpcTest, RepeatedContentTypesAreSignedOnce) {
  Start();
  v1::CreatePostPolicyRequest req = PostReq();
  for (const char* t : {"image/png", "image/png", "text/plain", "image/png"}) req.add_content_types(t);
  auto resp = app_->CreatePostPolicy(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_THAT(resp->policy_json(), HasSubstr(R"(["in","$content-type",["image/png","text/plain"]])"));
  auto stored = app_->GetUpload(resp->upload_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_THAT(stored->content_types(), ::testing::ElementsAre("image/png", "text/plain"));
  // Repeated filter entries are accepted (and matched once).
  grpc::ClientContext ctx;
  auto reader = [&] {
    ctx.AddMetadata("authorization", "Bearer key-app");
    v1::SubscribeRequest sub;
    sub.set_start(v1::START_POSITION_EARLIEST);
    for (int i = 0; i < 64; ++i) sub.mutable_filter()->add_buckets("photos");
    return app_->stub().Subscribe(&ctx, sub);
  }();
  ASSERT_TRUE(app_->AbortUpload(resp->upload_id()).ok());
  v1::SubscribeResponse event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.event().upload_expired().upload().upload_id(), resp->upload_id());
  ctx.TryCancel();
  (void)reader->Finish();
}

TEST_F(LimitsRpcTest, AMessageOverTheReceiveLimitIsResourceExhausted) {
  Start();
  // 2 MiB: over the default 1 MiB before any handler runs.
  v1::CreatePostPolicyRequest req = PostReq();
  (*req.mutable_metadata())["big"] = std::string(2 << 20, 'v');
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kResourceExhausted,
              "larger than max");
  // 100 KB reaches the handler (which names the field) under the default...
  req = PostReq();
  (*req.mutable_metadata())["big"] = std::string(100'000, 'v');
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kInvalidArgument, "metadata[big]");
  // ...and 10,000 part numbers (the most a plan can have) still fit.
  v1::SignUploadPartsRequest parts;
  parts.set_upload_id("up_000000000000ffffffffffffffffffff");
  for (int n = 1; n <= 10000; ++n) parts.add_part_numbers(n);
  ExpectError(app_->SignUploadParts(parts).status(), absl::StatusCode::kNotFound, "upload_id");

  // The limit is configurable: at 64 KiB the same 100 KB request is refused.
  server_->Shutdown();
  server_->Wait();
  server_.reset();
  Start("limits: {grpc_max_receive_bytes: 65536}\n");
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kResourceExhausted,
              "larger than max");
  EXPECT_TRUE(app_->CreatePostPolicy(PostReq()).ok());
}

TEST_F(LimitsRpcTest, ACallerHasAtMostTheConfiguredSubscribeStreams) {
  Start("limits: {subscribe_streams_per_caller: 2}\n");
  grpc::ClientContext c1, c2;
  auto s1 = Open(&c1, "key-app");
  auto s2 = Open(&c2, "key-app");
  s1->WaitForInitialMetadata();
  s2->WaitForInitialMetadata();
  {
    grpc::ClientContext c3;
    grpc::Status st = Open(&c3, "key-app")->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(st.error_message(), HasSubstr("caller 'app' already has 2 Subscribe streams open"));
    EXPECT_THAT(st.error_message(), HasSubstr("limits.subscribe_streams_per_caller (2)"));
  }
  // Another caller's streams are counted apart.
  grpc::ClientContext other;
  auto s_other = Open(&other, "key-batch");
  s_other->WaitForInitialMetadata();

  std::string metrics = testing::HttpGet(absl::StrCat("http://127.0.0.1:", server_->http_port(), "/metrics"));
  EXPECT_THAT(metrics, HasSubstr("upload_broker_subscribe_refused_total{caller=\"app\"} 1"));
  EXPECT_THAT(metrics, HasSubstr(R"(upload_broker_rpc_refused_total{method="Subscribe",code="RESOURCE_EXHAUSTED"} 1)"));

  // Closing one frees its slot (once the broker has seen it end).
  c1.TryCancel();
  (void)s1->Finish();
  bool reopened = false;
  for (int attempt = 0; attempt < 100 && !reopened; ++attempt) {
    auto c3 = std::make_unique<grpc::ClientContext>();
    auto s3 = Open(c3.get(), "key-app");
    s3->WaitForInitialMetadata();
    if (c3->GetServerInitialMetadata().count("ub-start-cursor") > 0) {
      reopened = true;
      c3->TryCancel();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    (void)s3->Finish();
  }
  EXPECT_TRUE(reopened);
  c2.TryCancel();
  other.TryCancel();
  (void)s2->Finish();
  (void)s_other->Finish();
}

TEST_F(LimitsRpcTest, ListUploadsPagesStayUnderOneMebibyteAndListEachUploadOnce) {
  Start();
  std::set<std::string> issued;
  for (int i = 0; i < 45; ++i) issued.insert(IssueLarge(absl::StrCat("uploads/", i)));
  v1::ListUploadsRequest req;
  req.set_page_size(1000);
  std::multiset<std::string> listed;
  int pages = 0;
  do {
    auto page = app_->ListUploads(req);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->ByteSizeLong(), size_t{1} << 20);
    EXPECT_FALSE(page->uploads().empty());
    for (const v1::Upload& u : page->uploads()) listed.insert(u.upload_id());
    req.set_page_token(page->next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 20);
  EXPECT_EQ(pages, 2);  // 45 x ~33 KB: one full mebibyte, then the rest
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), issued);
  EXPECT_EQ(listed.size(), issued.size());
}

// Five large events (~33 KB each) are waiting; a subscriber that accepts at
// most 64 KiB per message cannot take them 256 to a message.
TEST_F(LimitsRpcTest, ASubscriberOverItsReceiveLimitFallsBackToOneEventPerMessage) {
  Start();
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i) {
    sent.push_back(IssueLarge(absl::StrCat("uploads/", i)));
    ASSERT_TRUE(app_->AbortUpload(sent.back()).ok());
  }
  client::Subscriber::Options o;
  o.target = target_;
  o.api_key = "key-app";
  o.request.set_start(v1::START_POSITION_EARLIEST);
  o.max_receive_message_bytes = 64 << 10;
  o.initial_backoff = absl::Milliseconds(10);
  absl::Mutex mu;
  std::vector<std::string> got;
  std::vector<absl::Status> retries;
  o.on_retry = [&](const absl::Status& st, absl::Duration) {
    absl::MutexLock lock(&mu);
    retries.push_back(st);
  };
  client::Subscriber sub(o);
  absl::Status result;
  std::thread t([&] {
    result = sub.Run([&](const v1::Event& e) {
      absl::MutexLock lock(&mu);
      got.push_back(e.upload_expired().upload().upload_id());
      return absl::OkStatus();
    });
  });
  {
    absl::MutexLock lock(&mu);
    auto all = [&] { return got.size() >= sent.size(); };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(20)));
  }
  sub.Stop();
  t.join();
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_EQ(got, sent);
  ASSERT_EQ(retries.size(), 1u);  // the one oversized message, then no more
  EXPECT_EQ(retries[0].code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(LimitsRpcTest, ASubscriberStopsWhenOneEventExceedsItsLimit) {
  Start();
  const std::string id = IssueLarge("uploads/big");
  ASSERT_TRUE(app_->AbortUpload(id).ok());
  client::Subscriber::Options o;
  o.target = target_;
  o.api_key = "key-app";
  o.request.set_start(v1::START_POSITION_EARLIEST);
  o.max_receive_message_bytes = 16 << 10;
  o.initial_backoff = absl::Milliseconds(10);
  int retries = 0;
  o.on_retry = [&](const absl::Status&, absl::Duration) { ++retries; };
  client::Subscriber sub(o);
  const absl::Time t0 = absl::Now();
  absl::Status st = sub.Run([](const v1::Event&) { return absl::OkStatus(); });
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_THAT(st.message(), HasSubstr("the event after cursor 0 is larger than this client's receive limit"));
  EXPECT_THAT(st.message(), HasSubstr("at most 1048576 bytes"));
  EXPECT_EQ(retries, 1);

  // ubctl watch, the same client as a user runs it: exits 1 with the reason.
  testing::Exited e = testing::Subprocess::Run(
      {UB_UBCTL_BIN, "--broker", target_, "--api-key", "key-app", "watch", "--start", "earliest",
       "--max-receive-bytes", "16384"});
  EXPECT_EQ(e.code, 1) << e.err;
  EXPECT_THAT(e.err, HasSubstr("error: RESOURCE_EXHAUSTED: the event after cursor 0 is larger"));
  // With room for one message it prints the event.
  testing::Subprocess watch({UB_UBCTL_BIN, "--broker", target_, "--api-key", "key-app", "watch",
                             "--start", "earliest", "--max-receive-bytes", "65536"});
  std::optional<testing::Exited> still = watch.Wait(std::chrono::seconds(3));
  EXPECT_FALSE(still.has_value()) << "watch ended: " << (still ? still->err : "");
  watch.Signal(SIGTERM);
  std::optional<testing::Exited> done = watch.Wait(std::chrono::seconds(10));
  ASSERT_TRUE(done.has_value());
  EXPECT_THAT(done->out, HasSubstr(id));
}

}  // namespace
}  // namespace uploadbroker
