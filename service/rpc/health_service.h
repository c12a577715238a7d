// HealthService: grpc.health.v1.Health over the callback API.
//
// Check answers SERVING while the broker accepts work and the ledger takes
// writes; NOT_SERVING while draining or when the ledger is failing; NOT_FOUND
// for an unknown service name. Watch sends the current status, then each
// change (one write in flight per stream), and ends with UNAVAILABLE at
// Shutdown(). Thread-safe. Call Shutdown() before destroying it, after the
// gRPC server stopped accepting new calls.
#ifndef UPLOADBROKER_RPC_HEALTH_SERVICE_H_
#define UPLOADBROKER_RPC_HEALTH_SERVICE_H_

#include <functional>
#include <set>

#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace uploadbroker::rpc {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // `ready` reports whether dependencies (the ledger) accept work; it is
  // called on every Check and must be cheap and thread-safe.
  explicit HealthService(std::function<bool()> ready) : ready_(std::move(ready)) {}
  ~HealthService() override;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const grpc::health::v1::HealthCheckRequest* req) override;

  // Marks the server NOT_SERVING and ends every Watch with UNAVAILABLE;
  // blocks until all Watch streams are done.
  void Shutdown();

  class Watcher;

 private:
  Status Current() const;
  bool Register(Watcher* w);
  void Unregister(Watcher* w);

  const std::function<bool()> ready_;
  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uploadbroker::rpc

#endif  // UPLOADBROKER_RPC_HEALTH_SERVICE_H_
