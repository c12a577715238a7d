// HealthService against a fake ledger: Watch pushes every change the ledger's
// health goes through, and draining reads NOT_SERVING.
#include "rpc/health_service.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_ledger.h"

namespace uploadbroker::rpc {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthServiceTest : public ::testing::Test {
 protected:
  // `poll_interval` zero: changes go out when the test calls Poll().
  void Start(absl::Duration poll_interval) {
    health_ = std::make_unique<HealthService>([this] { return ledger_.Healthy(); }, poll_interval);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(health_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = Health::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (health_) health_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  // Every call and stream has a deadline, so a missing update fails the
  // test instead of hanging it.
  static void Deadline(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }

  HealthCheckResponse::ServingStatus Check(const std::string& service = "") {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    HealthCheckRequest req;
    req.set_service(service);
    HealthCheckResponse resp;
    grpc::Status st = stub_->Check(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  // The next status a Watch stream delivers (UNKNOWN if it ended).
  static HealthCheckResponse::ServingStatus Next(
      grpc::ClientReader<HealthCheckResponse>& watch) {
    HealthCheckResponse resp;
    if (!watch.Read(&resp)) return HealthCheckResponse::UNKNOWN;
    return resp.status();
  }

  testing::FakeLedger ledger_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Health::Stub> stub_;
};

TEST_F(HealthServiceTest, WatchSeesTheLedgerFailAndRecover) {
  Start(absl::ZeroDuration());
  grpc::ClientContext ctx;
  Deadline(&ctx);
  HealthCheckRequest req;
  auto watch = stub_->Watch(&ctx, req);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::SERVING);

  ledger_.SetHealthy(false);
  health_->Poll();
  EXPECT_EQ(Next(*watch), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check(), HealthCheckResponse::NOT_SERVING);

  ledger_.SetHealthy(true);
  health_->Poll();
  EXPECT_EQ(Next(*watch), HealthCheckResponse::SERVING);
  EXPECT_EQ(Check(), HealthCheckResponse::SERVING);
  ctx.TryCancel();
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(HealthServiceTest, PollerPushesChangesByItself) {
  Start(absl::Milliseconds(10));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  HealthCheckRequest req;
  req.set_service("uploadbroker.v1.UploadBroker");
  auto watch = stub_->Watch(&ctx, req);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::SERVING);
  ledger_.SetHealthy(false);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::NOT_SERVING);
  ledger_.SetHealthy(true);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::SERVING);
  ctx.TryCancel();
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(HealthServiceTest, UnknownServiceIsReportedOnceAndNotPolled) {
  Start(absl::ZeroDuration());
  grpc::ClientContext ctx;
  Deadline(&ctx);
  HealthCheckRequest req;
  req.set_service("no.such.Service");
  auto watch = stub_->Watch(&ctx, req);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::SERVICE_UNKNOWN);
  ledger_.SetHealthy(false);
  health_->Poll();
  // Draining ends it; the poll above sent nothing.
  std::thread drain([this] { health_->Shutdown(); });
  EXPECT_EQ(Next(*watch), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  drain.join();
}

TEST_F(HealthServiceTest, DrainingIsNotServingAndEndsWatches) {
  Start(absl::ZeroDuration());
  grpc::ClientContext ctx;
  Deadline(&ctx);
  HealthCheckRequest req;
  auto watch = stub_->Watch(&ctx, req);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::SERVING);
  // Shutdown waits for every Watch to end, so it runs beside the reader.
  std::thread drain([this] { health_->Shutdown(); });
  EXPECT_EQ(Next(*watch), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Next(*watch), HealthCheckResponse::UNKNOWN);
  grpc::Status end = watch->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(end.error_message(), "server is shutting down");
  drain.join();
  // The ledger is healthy, but a draining server is not serving.
  EXPECT_EQ(Check(), HealthCheckResponse::NOT_SERVING);
  // A Watch started while draining ends at once.
  grpc::ClientContext late_ctx;
  Deadline(&late_ctx);
  auto late = stub_->Watch(&late_ctx, req);
  EXPECT_EQ(Next(*late), HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(late->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace uploadbroker::rpc
