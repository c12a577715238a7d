#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "auth/authenticator.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "credentials/credential_provider.h"
#include "issue/issuer.h"
#include "ledger/sqlite_ledger.h"
#include "rpc/health_service.h"
#include "rpc/service.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::server {
namespace {

class BrokerServer final : public Server {
 public:
  int grpc_port() const override { return grpc_port_; }
  int http_port() const override { return 0; }

  void Shutdown() override {
    if (shutdown_started_.exchange(true)) return;
    spdlog::info("shutting down: draining gRPC calls");
    health_->Shutdown();
    grpc_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
    done_.Notify();
  }

  void Wait() override {
    done_.WaitForNotification();
    grpc_server_->Wait();
  }

  ~BrokerServer() override {
    Shutdown();
    Wait();
  }

  absl::Status Start(const Options& options) {
    UB_ASSIGN_OR_RETURN(config_, config::LoadConfig(options.config_path));
    UB_ASSIGN_OR_RETURN(creds_, credentials::CredentialProvider::Create(config_.credentials, &clock_));
    ledger::SqliteLedger::Options lo;
    lo.path = config_.ledger_path;
    lo.clock = &clock_;
    UB_ASSIGN_OR_RETURN(ledger_, ledger::SqliteLedger::Create(lo));
    auth_ = std::make_unique<auth::Authenticator>(config_.callers);
    issuer_ = std::make_unique<issue::Issuer>(config_, *creds_, *ledger_, clock_);
    service_ = std::make_unique<rpc::UploadBrokerService>(*auth_, *issuer_, *ledger_);

    health_ = std::make_unique<rpc::HealthService>([this] { return ledger_->Healthy(); });
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config_.grpc_listen, grpc::InsecureServerCredentials(), &grpc_port_);
    builder.RegisterService(service_.get());
    builder.RegisterService(health_.get());
    grpc_server_ = builder.BuildAndStart();
    if (grpc_server_ == nullptr || grpc_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("listen.grpc: cannot listen on '", config_.grpc_listen, "'"));
    }
    spdlog::info("gRPC API listening on port {} (config {}, ledger {})", grpc_port_,
                 config_.source, config_.ledger_path);
    return absl::OkStatus();
  }

 private:
  common::RealClock clock_;
  config::Config config_;
  std::unique_ptr<credentials::CredentialProvider> creds_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<auth::Authenticator> auth_;
  std::unique_ptr<issue::Issuer> issuer_;
  std::unique_ptr<rpc::UploadBrokerService> service_;
  std::unique_ptr<rpc::HealthService> health_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int grpc_port_ = 0;
  std::atomic<bool> shutdown_started_{false};
  absl::Notification done_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const Options& options) {
  auto server = std::make_unique<BrokerServer>();
  UB_RETURN_IF_ERROR(server->Start(options));
  return server;
}

}  // namespace uploadbroker::server
