// BrokerClient: a thin C++ client for uploadbroker.v1 that attaches the API
// key to every call and returns absl statuses. Thread-safe (gRPC stubs are).
#ifndef UPLOADBROKER_CLIENT_BROKER_CLIENT_H_
#define UPLOADBROKER_CLIENT_BROKER_CLIENT_H_

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

namespace uploadbroker::client {

class BrokerClient {
 public:
  // `target` is a gRPC target such as "localhost:50051" (plaintext).
  BrokerClient(const std::string& target, std::string api_key,
               absl::Duration deadline = absl::Seconds(10));
  // Over `credentials` (client/channel.h: TLS, mutual TLS); null: plaintext.
  BrokerClient(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
               std::string api_key, absl::Duration deadline = absl::Seconds(10));

  absl::StatusOr<v1::CreatePostPolicyResponse> CreatePostPolicy(
      const v1::CreatePostPolicyRequest& req);
  absl::StatusOr<v1::CreatePresignedPutResponse> CreatePresignedPut(
      const v1::CreatePresignedPutRequest& req);
  absl::StatusOr<v1::Upload> GetUpload(const std::string& upload_id);
  absl::StatusOr<v1::ListUploadsResponse> ListUploads(const v1::ListUploadsRequest& req);
  absl::StatusOr<v1::CreateMultipartUploadResponse> CreateMultipartUpload(
      const v1::CreateMultipartUploadRequest& req);
  absl::StatusOr<v1::SignUploadPartsResponse> SignUploadParts(
      const v1::SignUploadPartsRequest& req);
  absl::StatusOr<v1::ListUploadedPartsResponse> ListUploadedParts(const std::string& upload_id);
  absl::StatusOr<v1::CompleteMultipartUploadResponse> CompleteMultipartUpload(
      const std::string& upload_id);
  absl::StatusOr<v1::AbortUploadResponse> AbortUpload(const std::string& upload_id);

  v1::UploadBroker::Stub& stub() { return *stub_; }
  // Sets the API key and deadline on a fresh context.
  void Prepare(grpc::ClientContext* ctx, bool with_deadline = true) const;

 private:
  // One unary call through `method` of the stub.
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Call(
      grpc::Status (v1::UploadBroker::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
      const Req& req);

  std::unique_ptr<v1::UploadBroker::Stub> stub_;
  std::string api_key_;
  absl::Duration deadline_;
};

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_BROKER_CLIENT_H_
