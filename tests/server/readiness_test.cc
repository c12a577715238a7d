// Readiness follows the ledger: when a commit fails, /readyz answers 503
// and gRPC health says NOT_SERVING; once a later commit succeeds, both
// recover by themselves.
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "config/config.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class ReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string yaml = absl::StrCat(
        testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/cb"),
        "buckets: [{name: bkt, region: cn-hangzhou, endpoint: \"https://oss-cn-hangzhou.aliyuncs.com\"}]\n",
        "callers: [{name: app, api_key_sha256: ", common::HexEncode(common::Sha256("k")),
        ", buckets: [bkt]}]\nreconcile: {enabled: false}\n");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
  ASSERT_TRUE(config.ok()) << config.status();
  opts.config = *std::move(config);
    auto broker = server::Server::Create(opts);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    const std::string target = absl::StrCat("127.0.0.1:", broker_->grpc_port());
    // The ledger's busy timeout is 5 s: give each call room beyond it.
    client_ = std::make_unique<client::BrokerClient>(target, "k", absl::Seconds(60));
    health_ = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  }

  int Readyz() {
    auto c = http::RawClient::Connect(broker_->http_port());
    if (!c || !c->Send("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) return 0;
    auto reply = c->ReadResponse(absl::Seconds(30));
    return reply ? reply->status : 0;
  }

  HealthCheckResponse::ServingStatus Health() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    HealthCheckResponse resp;
    grpc::Status st = health_->Check(&ctx, HealthCheckRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  absl::Status Authorize(const std::string& key) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("bkt");
    req.set_key(key);
    return client_->CreatePostPolicy(req).status();
  }

  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::unique_ptr<server::Server> broker_;
  std::unique_ptr<client::BrokerClient> client_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(ReadinessTest, NotReadyWhileTheLedgerCannotCommitAndReadyAgainAfter) {
  ASSERT_TRUE(Authorize("before").ok());
  EXPECT_EQ(Readyz(), 200);
  EXPECT_EQ(Health(), HealthCheckResponse::SERVING);

  // Another process holds the write lock past the ledger's busy timeout:
  // the commit behind this authorization fails.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.File("ledger.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  absl::Status during = Authorize("during");
  EXPECT_EQ(during.code(), absl::StatusCode::kUnavailable) << during;
  EXPECT_EQ(Readyz(), 503);
  EXPECT_EQ(Health(), HealthCheckResponse::NOT_SERVING);

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  // Nothing else to do: the next commit that succeeds restores readiness.
  ASSERT_TRUE(Authorize("after").ok());
  EXPECT_EQ(Readyz(), 200);
  EXPECT_EQ(Health(), HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace uploadbroker
