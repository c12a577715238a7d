// The broker's gRPC keepalive policy, in one place for the broker's server
// and the benchmark servers that must behave like it. Header-only, for the
// targets that already link gRPC (server, bench).
//
// The server pings every 30 s, so a subscriber that vanished without closing
// its connection is noticed within 40 s, and accepts clients' keepalive pings
// down to 10 s apart even on streams that carry no data (client::Subscriber
// pings every 30 s by default, so quiet Subscribe streams stay open through
// proxies).
#ifndef UPLOADBROKER_COMMON_GRPC_KEEPALIVE_H_
#define UPLOADBROKER_COMMON_GRPC_KEEPALIVE_H_

#include "grpcpp/server_builder.h"

namespace uploadbroker::common {

// Sets the channel arguments above on `builder`, before BuildAndStart().
inline void SetServerKeepalive(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
}

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_GRPC_KEEPALIVE_H_
