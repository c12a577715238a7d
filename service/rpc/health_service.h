// HealthService: grpc.health.v1.Health over the callback API.
//
// Check answers SERVING while the broker accepts work and the ledger takes
// writes; NOT_SERVING while draining or when the ledger is failing; NOT_FOUND
// for an unknown service name. Watch sends the current status, then every
// change it sees (one write in flight per stream; only the newest unsent
// status is kept), and ends with UNAVAILABLE at Shutdown().
//
// Changes are found by polling: a thread of the service calls `ready` every
// `poll_interval` and pushes a new status to every Watch stream (the ledger
// has no health callback to subscribe to, and Healthy() is a cheap flag).
// Poll() does one such round now, for tests.
//
// Why hand-written rather than gRPC's own (EnableDefaultHealthCheckService):
// gRPC's service only reports what SetServingStatus() last set, so it would
// need this same poller and its Check would answer up to a poll late. This
// one asks the ledger on every Check, reports draining, and ends Watch
// streams with UNAVAILABLE at drain. It is an ordinary service generated
// from proto/grpc/health/v1, so server reflection describes it. Its Watch follows gRPC's own WatchReactor
// (src/cpp/server/health/default_health_check_service.cc).
//
// Thread-safe. Call Shutdown() (the destructor does too) before the gRPC
// server is destroyed; it never calls into a stream while holding the
// service's lock.
#ifndef UPLOADBROKER_RPC_HEALTH_SERVICE_H_
#define UPLOADBROKER_RPC_HEALTH_SERVICE_H_

#include <functional>
#include <memory>
#include <set>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace uploadbroker::rpc {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // `ready` reports whether dependencies (the ledger) accept work; it is
  // called on every Check and every poll and must be cheap and thread-safe.
  // A zero `poll_interval` starts no thread (changes then go out on Poll()).
  explicit HealthService(std::function<bool()> ready,
                         absl::Duration poll_interval = absl::Seconds(1));
  ~HealthService() override;

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const grpc::health::v1::HealthCheckRequest* req) override;

  // Looks at `ready` now and sends the status to every Watch stream whose
  // last status differs.
  void Poll();

  // Marks the server NOT_SERVING, stops polling and ends every Watch with
  // NOT_SERVING then UNAVAILABLE; blocks until all Watch streams are done.
  // A stream whose client stopped reading (its write cannot finish) is
  // cancelled after kShutdownGrace, so this returns within about that.
  // Idempotent.
  void Shutdown();
  static constexpr absl::Duration kShutdownGrace = absl::Seconds(5);

  class Watcher;

 private:
  Status Current() const;
  bool Register(const std::shared_ptr<Watcher>& w);
  void Unregister(Watcher* w);
  // The registered streams, each kept alive by the returned references.
  std::vector<std::shared_ptr<Watcher>> Snapshot() const;
  bool StoppingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutting_down_; }
  bool NoWatchersLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return watchers_.empty(); }

  const std::function<bool()> ready_;
  const absl::Duration poll_interval_;
  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  std::thread poller_;
};

}  // namespace uploadbroker::rpc

#endif  // UPLOADBROKER_RPC_HEALTH_SERVICE_H_
