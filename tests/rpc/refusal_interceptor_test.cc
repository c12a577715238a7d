// The refusal interceptor on a real gRPC server: refusals are counted by
// method and code, logged with the client's text made safe, and the log is
// bounded per second by the (fake) clock, the next line saying how many
// were left out.
#include "rpc/refusal_interceptor.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "metrics/registry.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/testing/fake_clock.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

namespace uploadbroker::rpc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::uploadbroker::v1;

// GetUpload refuses with INVALID_ARGUMENT quoting the id; ListUploads
// answers NOT_FOUND (not a refusal of what was asked).
class Refuser final : public v1::UploadBroker::Service {
  grpc::Status GetUpload(grpc::ServerContext*, const v1::GetUploadRequest* req, v1::Upload*) override {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("bad id ", req->upload_id()));
  }
  grpc::Status ListUploads(grpc::ServerContext*, const v1::ListUploadsRequest*,
                           v1::ListUploadsResponse*) override {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "nothing");
  }
};

class RefusalInterceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_)));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(MakeRefusalInterceptorFactory(registry_, &clock_));
    builder.experimental().SetInterceptorCreators(std::move(factories));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::UploadBroker::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown();
    spdlog::set_default_logger(previous_);
  }

  grpc::StatusCode Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetUploadRequest req;
    req.set_upload_id(id);
    v1::Upload resp;
    return stub_->GetUpload(&ctx, req, &resp).error_code();
  }
  int LogLines(const std::string& needle) {
    std::string text = log_.str();
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }

  testing::FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  metrics::Registry registry_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
  Refuser service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::UploadBroker::Stub> stub_;
};

TEST_F(RefusalInterceptorTest, AFloodIsLoggedAtABoundedRateAndTheNextLineCountsTheRest) {
  for (int i = 0; i < 40; ++i) ASSERT_EQ(Get("x"), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(LogLines("rpc refused: GetUpload INVALID_ARGUMENT: bad id x"), kRefusalLogsPerSecond)
      << log_.str();
  EXPECT_THAT(log_.str(), Not(HasSubstr("not logged")));
  clock_.Advance(absl::Seconds(1));
  ASSERT_EQ(Get("y"), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(log_.str(), HasSubstr(absl::StrCat("bad id y (", 40 - kRefusalLogsPerSecond,
                                                 " more refusals not logged)")));
  EXPECT_THAT(registry_.Render(), HasSubstr(
      R"(upload_broker_rpc_refused_total{method="GetUpload",code="INVALID_ARGUMENT"} 41)"));
}

TEST_F(RefusalInterceptorTest, TheClientsTextCannotForgeALogLine) {
  ASSERT_EQ(Get("a\n[2026-12-06 04:00:00.000] [info] FORGED\xe2\x80\xae"), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(log_.str(), HasSubstr(R"(bad id a\x0a[2026-12-06 04:00:00.000] [info] FORGED\u202e)"));
  EXPECT_EQ(LogLines("\n"), 1) << log_.str();
}

TEST_F(RefusalInterceptorTest, OtherCodesAreNeitherCountedNorLogged) {
  grpc::ClientContext ctx;
  v1::ListUploadsResponse resp;
  EXPECT_EQ(stub_->ListUploads(&ctx, v1::ListUploadsRequest(), &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(log_.str(), "");
  EXPECT_THAT(registry_.Render(), Not(HasSubstr("method=\"ListUploads\"")));
}

}  // namespace
}  // namespace uploadbroker::rpc
