#include "client/broker_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"

namespace uploadbroker::client {
namespace {

absl::Status FromGrpc(const grpc::Status& st) {
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
}

}  // namespace

BrokerClient::BrokerClient(const std::string& target, std::string api_key,
                           absl::Duration deadline)
    : BrokerClient(target, nullptr, std::move(api_key), deadline) {}

BrokerClient::BrokerClient(const std::string& target,
                           std::shared_ptr<grpc::ChannelCredentials> credentials,
                           std::string api_key, absl::Duration deadline)
    : stub_(v1::UploadBroker::NewStub(grpc::CreateChannel(
          target, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials()))),
      api_key_(std::move(api_key)),
      deadline_(deadline) {}

void BrokerClient::Prepare(grpc::ClientContext* ctx, bool with_deadline) const {
  if (!api_key_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", api_key_));
  if (with_deadline) ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline_));
}

absl::StatusOr<v1::CreatePostPolicyResponse> BrokerClient::CreatePostPolicy(
    const v1::CreatePostPolicyRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::CreatePostPolicyResponse resp;
  grpc::Status st = stub_->CreatePostPolicy(&ctx, req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<v1::CreatePresignedPutResponse> BrokerClient::CreatePresignedPut(
    const v1::CreatePresignedPutRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::CreatePresignedPutResponse resp;
  grpc::Status st = stub_->CreatePresignedPut(&ctx, req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<v1::Upload> BrokerClient::GetUpload(const std::string& upload_id) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::GetUploadRequest req;
  req.set_upload_id(upload_id);
  v1::Upload resp;
  grpc::Status st = stub_->GetUpload(&ctx, req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<v1::ListUploadsResponse> BrokerClient::ListUploads(
    const v1::ListUploadsRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::ListUploadsResponse resp;
  grpc::Status st = stub_->ListUploads(&ctx, req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

template <typename Req, typename Resp>
absl::StatusOr<Resp> BrokerClient::Call(
    grpc::Status (v1::UploadBroker::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
    const Req& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  Resp resp;
  grpc::Status st = (stub_.get()->*method)(&ctx, req, &resp);
  if (!st.ok()) return FromGrpc(st);
  return resp;
}

absl::StatusOr<v1::CreateMultipartUploadResponse> BrokerClient::CreateMultipartUpload(
    const v1::CreateMultipartUploadRequest& req) {
  return Call(&v1::UploadBroker::Stub::CreateMultipartUpload, req);
}

absl::StatusOr<v1::SignUploadPartsResponse> BrokerClient::SignUploadParts(
    const v1::SignUploadPartsRequest& req) {
  return Call(&v1::UploadBroker::Stub::SignUploadParts, req);
}

absl::StatusOr<v1::ListUploadedPartsResponse> BrokerClient::ListUploadedParts(
    const std::string& upload_id) {
  v1::ListUploadedPartsRequest req;
  req.set_upload_id(upload_id);
  return Call(&v1::UploadBroker::Stub::ListUploadedParts, req);
}

absl::StatusOr<v1::CompleteMultipartUploadResponse> BrokerClient::CompleteMultipartUpload(
    const std::string& upload_id) {
  v1::CompleteMultipartUploadRequest req;
  req.set_upload_id(upload_id);
  return Call(&v1::UploadBroker::Stub::CompleteMultipartUpload, req);
}

absl::StatusOr<v1::AbortUploadResponse> BrokerClient::AbortUpload(const std::string& upload_id) {
  v1::AbortUploadRequest req;
  req.set_upload_id(upload_id);
  return Call(&v1::UploadBroker::Stub::AbortUpload, req);
}

}  // namespace uploadbroker::client
