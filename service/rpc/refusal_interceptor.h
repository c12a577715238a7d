// RefusalInterceptor: counts and logs the RPCs the broker refuses because
// of what the request asked for — INVALID_ARGUMENT (malformed, or over a
// cap of common/request_limits.h), PERMISSION_DENIED (outside the caller's
// scope) and RESOURCE_EXHAUSTED (too many Subscribe streams) — so a
// misbehaving backend shows up in metrics and logs, not only in its own
// error statuses.
//
// Metric: upload_broker_rpc_refused_total{method, code}, method being the
// RPC's short name (e.g. "CreatePostPolicy"). Log: one warning per refusal
// with the method, code and message (common::LogSafe), at most
// kRefusalLogsPerSecond lines a second (common::LogRateLimiter); the rest are
// counted, and the next line logged says how many it stands for.
// Messages larger than gRPC's receive limit are refused by gRPC itself,
// before any interceptor runs: they are not seen here.
//
// Thread-safe; the factory and the metric must outlive the grpc::Server.
#ifndef UPLOADBROKER_RPC_REFUSAL_INTERCEPTOR_H_
#define UPLOADBROKER_RPC_REFUSAL_INTERCEPTOR_H_

#include <memory>

#include "common/clock.h"
#include "grpcpp/support/server_interceptor.h"
#include "metrics/registry.h"

namespace uploadbroker::rpc {

inline constexpr int kRefusalLogsPerSecond = 5;

// Registers the metric in `registry` and returns the factory to hand to
// grpc::ServerBuilder::experimental().SetInterceptorCreators. `clock` (null:
// the real clock; not owned, must outlive the factory) times the log limit.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeRefusalInterceptorFactory(
    metrics::Registry& registry, const common::Clock* clock = nullptr);

}  // namespace uploadbroker::rpc

#endif  // UPLOADBROKER_RPC_REFUSAL_INTERCEPTOR_H_
