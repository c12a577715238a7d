#include "rpc/refusal_interceptor.h"

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/log_safe.h"
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

class RefusalInterceptor final : public grpc::experimental::Interceptor {
 public:
  RefusalInterceptor(const char* method, metrics::Counter& refused, common::LogRateLimiter& log_limit)
      : method_(method), refused_(refused), log_limit_(log_limit) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (const char* code = RefusedCode(status.error_code()); code != nullptr) {
        const std::string method = ShortName(method_);
        refused_.Inc({method, code});
        uint64_t suppressed = 0;
        if (log_limit_.Admit(&suppressed)) {
          spdlog::warn("rpc refused: {} {}: {}{}", method, code,
                       common::LogSafe(status.error_message(), common::kLogSafeMessageBytes),
                       suppressed > 0 ? fmt::format(" ({} more refusals not logged)", suppressed)
                                      : std::string());
        }
      }
    }
    methods->Proceed();
  }

 private:
  const char* const method_;
  metrics::Counter& refused_;
  common::LogRateLimiter& log_limit_;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  Factory(metrics::Registry& registry, const common::Clock* clock)
      : log_limit_(kRefusalLogsPerSecond, clock),
        refused_(registry.AddCounter("upload_broker_rpc_refused_total",
                                     "RPCs refused for what they asked (malformed, over a cap, "
                                     "outside the caller's scope, over a stream limit), by method and code",
                                     {"method", "code"})) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RefusalInterceptor(info->method(), refused_, log_limit_);
  }

 private:
  common::LogRateLimiter log_limit_;
  metrics::Counter& refused_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeRefusalInterceptorFactory(
    metrics::Registry& registry, const common::Clock* clock) {
  return std::make_unique<Factory>(registry, clock);
}

}  // namespace uploadbroker::rpc
