#include "rpc/refusal_interceptor.h"

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

const char* RefusedCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    default:
      return nullptr;
  }
}

// "/uploadbroker.v1.UploadBroker/GetUpload" -> "GetUpload".
std::string ShortName(const char* method) {
  absl::string_view m = method == nullptr ? "" : method;
  const size_t slash = m.rfind('/');
  return std::string(slash == absl::string_view::npos ? m : m.substr(slash + 1));
}

// Bounds the warnings to kLogBurst per kLogWindow.
class LogBudget {
 public:
  // True when a line may be logged now; `suppressed` gets the count of
  // lines dropped since the last one logged.
  bool Take(uint64_t* suppressed) {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - window_start_ >= kLogWindow) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= kLogBurst) {
      ++dropped_;
      return false;
    }
    ++used_;
    *suppressed = dropped_;
    dropped_ = 0;
    return true;
  }

 private:
  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int used_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

class RefusalInterceptor final : public grpc::experimental::Interceptor {
 public:
  RefusalInterceptor(const char* method, metrics::Counter& refused, LogBudget& budget)
      : method_(method), refused_(refused), budget_(budget) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (const char* code = RefusedCode(status.error_code()); code != nullptr) {
        const std::string method = ShortName(method_);
        refused_.Inc({method, code});
        uint64_t suppressed = 0;
        if (budget_.Take(&suppressed)) {
          spdlog::warn("rpc refused: {} {}: {}{}", method, code,
                       absl::CHexEscape(status.error_message().substr(0, 512)),
                       suppressed > 0 ? fmt::format(" ({} similar lines suppressed)", suppressed)
                                      : std::string());
        }
      }
    }
    methods->Proceed();
  }

 private:
  const char* const method_;
  metrics::Counter& refused_;
  LogBudget& budget_;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(metrics::Registry& registry)
      : refused_(registry.AddCounter("upload_broker_rpc_refused_total",
                                     "RPCs refused for what they asked (malformed, over a cap, "
                                     "outside the caller's scope, over a stream limit), by method and code",
                                     {"method", "code"})) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RefusalInterceptor(info->method(), refused_, budget_);
  }

 private:
  metrics::Counter& refused_;
  LogBudget budget_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeRefusalInterceptorFactory(
    metrics::Registry& registry) {
  return std::make_unique<Factory>(registry);
}

}  // namespace uploadbroker::rpc
