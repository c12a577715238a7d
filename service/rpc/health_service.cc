#include "rpc/health_service.h"

#include <optional>

namespace uploadbroker::rpc {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// The names this server answers for: the server as a whole and the API.
bool Known(const std::string& service) {
  return service.empty() || service == "uploadbroker.v1.UploadBroker";
}

}  // namespace

// One Watch stream. Lives until OnDone; the service holds a raw pointer to it
// between Register and Unregister.
class HealthService::Watcher final
    : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, Status initial) : service_(service) {
    if (!service_->Register(this)) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
      registered_ = false;
      return;
    }
    Send(initial);
  }

  void Send(Status status) {
    absl::MutexLock lock(&mu_);
    pending_ = status;
    MaybeWriteLocked();
  }

  void End() {
    absl::MutexLock lock(&mu_);
    end_requested_ = true;
    if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    } else if (end_requested_) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
    } else {
      MaybeWriteLocked();
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    if (registered_) service_->Unregister(this);
    delete this;
  }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || !pending_.has_value()) return;
    if (sent_.has_value() && *sent_ == *pending_) {
      pending_.reset();
      return;
    }
    response_.set_status(*pending_);
    sent_ = pending_;
    pending_.reset();
    writing_ = true;
    StartWrite(&response_);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  HealthService* const service_;
  bool registered_ = true;
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool end_requested_ ABSL_GUARDED_BY(mu_) = false;
};

HealthService::~HealthService() { Shutdown(); }

HealthService::Status HealthService::Current() const {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return HealthCheckResponse::NOT_SERVING;
  }
  return ready_() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx,
                                               const HealthCheckRequest* req,
                                               HealthCheckResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (!Known(req->service())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
    return reactor;
  }
  resp->set_status(Current());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* ctx, const HealthCheckRequest* req) {
  return new Watcher(this, Known(req->service()) ? Current()
                                                 : HealthCheckResponse::SERVICE_UNKNOWN);
}

bool HealthService::Register(Watcher* w) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return false;
  watchers_.insert(w);
  return true;
}

void HealthService::Unregister(Watcher* w) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(w);
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
  for (Watcher* w : watchers_) {
    w->Send(HealthCheckResponse::NOT_SERVING);
    w->End();
  }
  mu_.Await(absl::Condition(
      +[](std::set<Watcher*>* ws) { return ws->empty(); }, &watchers_));
}

}  // namespace uploadbroker::rpc
