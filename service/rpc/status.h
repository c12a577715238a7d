// The one place an absl::Status becomes a grpc::Status.
#ifndef UPLOADBROKER_RPC_STATUS_H_
#define UPLOADBROKER_RPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace uploadbroker::rpc {

// Same canonical code, same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace uploadbroker::rpc

#endif  // UPLOADBROKER_RPC_STATUS_H_
