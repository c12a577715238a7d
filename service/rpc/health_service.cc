#include "rpc/health_service.h"

#include <atomic>
#include <optional>
#include <utility>
#include <vector>

namespace uploadbroker::rpc {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// The names this server answers for: the server as a whole and the API.
bool Known(const std::string& service) {
  return service.empty() || service == "uploadbroker.v1.UploadBroker";
}

}  // namespace

// One Watch stream. gRPC holds it from Watch() to OnDone; the service holds
// a reference while it is registered and, briefly, while it sends to it, so
// the object lives until both let go. After Finish nothing more is written.
class HealthService::Watcher final
    : public grpc::ServerWriteReactor<HealthCheckResponse>,
      public std::enable_shared_from_this<Watcher> {
 public:
  // Starts the stream: registers with the service (or ends at once when it
  // is shutting down), then sends the status as of after registration, so a
  // change the poller sees later reaches this stream too.
  void Start(HealthService* service, grpc::CallbackServerContext* ctx, bool known) {
    service_ = service;
    ctx_ = ctx;
    self_ = shared_from_this();
    if (!service_->Register(self_)) {
      absl::MutexLock lock(&mu_);
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
      return;
    }
    registered_ = true;
    Send(known ? service_->Current() : HealthCheckResponse::SERVICE_UNKNOWN);
  }

  // Ignored for a stream watching an unknown service name.
  void Update(Status status) {
    if (unknown_) return;
    Send(status);
  }

  void Send(Status status) {
    absl::MutexLock lock(&mu_);
    if (status == HealthCheckResponse::SERVICE_UNKNOWN) unknown_ = true;
    pending_ = status;
    MaybeWriteLocked();
  }

  void End() {
    absl::MutexLock lock(&mu_);
    end_requested_ = true;
    if (!writing_) FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
  }

  // Shutdown after the grace: a client that stopped reading keeps a write
  // in flight forever; cancelling fails it, and the stream ends.
  void Cancel() {
    absl::MutexLock lock(&mu_);
    if (!done_) ctx_->TryCancel();  // OnDone not begun: ctx_ is alive
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    // A status queued while this write was in flight (the NOT_SERVING of a
    // drain) goes out before the stream ends.
    MaybeWriteLocked();
    if (!writing_ && end_requested_) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
    }
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    if (registered_) service_->Unregister(this);
    self_.reset();  // may destroy this
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

  HealthService* service_ = nullptr;
  grpc::CallbackServerContext* ctx_ = nullptr;  // valid until OnDone
  bool registered_ = false;
  std::atomic<bool> unknown_{false};
  std::shared_ptr<Watcher> self_;  // gRPC's hold, released in OnDone
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool end_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

HealthService::HealthService(std::function<bool()> ready, absl::Duration poll_interval)
    : ready_(std::move(ready)), poll_interval_(poll_interval) {
  if (poll_interval_ <= absl::ZeroDuration()) return;
  poller_ = std::thread([this] {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(this, &HealthService::StoppingLocked), poll_interval_);
        if (shutting_down_) return;
      }
      Poll();
    }
  });
}

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
  auto watcher = std::make_shared<Watcher>();
  watcher->Start(this, ctx, Known(req->service()));
  return watcher.get();  // gRPC's hold is the watcher's self_ until OnDone
}

void HealthService::Poll() {
  const Status now = Current();
  for (const std::shared_ptr<Watcher>& w : Snapshot()) w->Update(now);
}

bool HealthService::Register(const std::shared_ptr<Watcher>& w) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return false;
  watchers_.insert(w);
  return true;
}

void HealthService::Unregister(Watcher* w) {
  absl::MutexLock lock(&mu_);
  for (auto it = watchers_.begin(); it != watchers_.end(); ++it) {
    if (it->get() == w) {
      watchers_.erase(it);
      return;
    }
  }
}

std::vector<std::shared_ptr<HealthService::Watcher>> HealthService::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return {watchers_.begin(), watchers_.end()};
}

void HealthService::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;  // no new watchers; the poller stops
  }
  if (poller_.joinable()) poller_.join();
  // Outside the lock: each stream takes its own lock and calls into gRPC.
  for (const std::shared_ptr<Watcher>& w : Snapshot()) {
    w->Send(HealthCheckResponse::NOT_SERVING);
    w->End();
  }
  {
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(this, &HealthService::NoWatchersLocked),
                             kShutdownGrace)) {
      return;
    }
  }
  // Whatever is left has a write its client never took: cancel it.
  for (const std::shared_ptr<Watcher>& w : Snapshot()) w->Cancel();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &HealthService::NoWatchersLocked));
}

}  // namespace uploadbroker::rpc
