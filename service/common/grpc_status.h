// The one place an absl::Status becomes a grpc::Status: same canonical code
// (absl and gRPC share the numbering), same message. Header-only, for the
// components that already link gRPC (rpc, stream).
#ifndef UPLOADBROKER_COMMON_GRPC_STATUS_H_
#define UPLOADBROKER_COMMON_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace uploadbroker::common {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_GRPC_STATUS_H_
