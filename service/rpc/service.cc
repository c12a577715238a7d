#include "rpc/service.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "tls/grpc_credentials.h"
#include "common/request_limits.h"
#include "rpc/page_token.h"

namespace uploadbroker::rpc {
namespace {

// Finishes the call at once with `st` (the response is already filled in).
grpc::ServerUnaryReactor* FinishWith(grpc::CallbackServerContext* ctx,
                                 const absl::Status& st) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(common::ToGrpcStatus(st));
  return reactor;
}

// Issued to a caller it may read (itself unless read_callers grants more)
// and inside its scope.
bool VisibleTo(const auth::Identity& caller, const v1::Upload& u) {
  return auth::MayRead(caller, u.caller()) && auth::CheckBucket(caller, u.bucket()).ok() &&
         auth::CheckKey(caller, u.key(), u.key_is_prefix()).ok();
}

}  // namespace

std::string NoUpload(absl::string_view upload_id) {
  return absl::StrCat("upload_id: no upload '", upload_id,
                      "' this caller can read (never issued, issued to a caller it may not "
                      "read, or settled and removed by ledger.retain_settled)");
}

UploadBrokerService::UploadBrokerService(const auth::Authenticator& auth, issue::Issuer& issuer,
                                         issue::MultipartIssuer& multipart, ledger::Ledger& ledger,
                                         stream::EventStreamer& streamer,
                                         deliver::ConsumeDispatcher* consume)
    : auth_(auth),
      issuer_(issuer),
      multipart_(multipart),
      ledger_(ledger),
      streamer_(streamer),
      consume_(consume),
      reads_(std::make_unique<boost::asio::thread_pool>(kReadThreads)) {
  SetMessageAllocatorFor_CreatePostPolicy(&post_policy_messages_);
  SetMessageAllocatorFor_CreatePresignedPut(&presigned_put_messages_);
}

UploadBrokerService::~UploadBrokerService() { reads_->join(); }

absl::StatusOr<auth::Principal> UploadBrokerService::Caller(
    const grpc::ServerContextBase* ctx) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  absl::string_view header;
  if (it != md.end()) header = absl::string_view(it->second.data(), it->second.size());
  // No API key: a verified client certificate (mutual TLS) may name the caller.
  if (header.empty() && ctx->auth_context() != nullptr) {
    std::vector<std::string> uris = tls::PeerCertificateUris(*ctx->auth_context());
    if (!uris.empty()) return auth_.AuthenticateCertificate(uris, ctx->peer());
  }
  return auth_.Authenticate(header, ctx->peer());
}

grpc::ServerUnaryReactor* UploadBrokerService::CreatePostPolicy(
    grpc::CallbackServerContext* ctx, const v1::CreatePostPolicyRequest* req,
    v1::CreatePostPolicyResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return FinishWith(ctx, caller.status());
  auto* reactor = ctx->DefaultReactor();
  issuer_.CreatePostPolicy(**caller, *req, resp, [reactor](const absl::Status& st) {
    reactor->Finish(common::ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* UploadBrokerService::CreatePresignedPut(
    grpc::CallbackServerContext* ctx, const v1::CreatePresignedPutRequest* req,
    v1::CreatePresignedPutResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return FinishWith(ctx, caller.status());
  auto* reactor = ctx->DefaultReactor();
  issuer_.CreatePresignedPut(**caller, *req, resp, [reactor](const absl::Status& st) {
    reactor->Finish(common::ToGrpcStatus(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* UploadBrokerService::GetUpload(
    grpc::CallbackServerContext* ctx, const v1::GetUploadRequest* req,
    v1::Upload* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return FinishWith(ctx, caller.status());
  if (req->upload_id().empty()) {
    return FinishWith(ctx, absl::InvalidArgumentError("upload_id: required"));
  }
  auto* reactor = ctx->DefaultReactor();
  // The read runs on the pool; gRPC keeps req, resp and the reactor alive
  // until Finish.
  boost::asio::post(*reads_, [this, reactor, req, resp, caller = *caller] {
    absl::StatusOr<v1::Upload> upload = ledger_.GetUpload(req->upload_id());
    // One answer for every upload the caller cannot see: never issued,
    // issued to a caller it may not read, or aged out of retention (the row
    // is gone, so not even its owner can be told apart), so ids cannot be
    // probed across callers.
    if (absl::IsNotFound(upload.status()) || (upload.ok() && !VisibleTo(*caller, *upload))) {
      upload = absl::NotFoundError(NoUpload(req->upload_id()));
    }
    if (upload.ok()) *resp = *std::move(upload);
    reactor->Finish(common::ToGrpcStatus(upload.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* UploadBrokerService::ListUploads(
    grpc::CallbackServerContext* ctx, const v1::ListUploadsRequest* req,
    v1::ListUploadsResponse* resp) {
  auto caller_or = Caller(ctx);
  if (!caller_or.ok()) return FinishWith(ctx, caller_or.status());
  const auth::Identity& caller = **caller_or;  // alive while *caller_or is
  if (req->page_size() < 0 || req->page_size() > 1000) {
    return FinishWith(ctx, absl::InvalidArgumentError("page_size: must be between 0 and 1000"));
  }
  absl::Status bounded = common::CheckCount("buckets", req->buckets_size(), common::kMaxFilterEntries);
  if (bounded.ok()) {
    bounded = common::CheckLength("key_prefix", req->key_prefix(), common::kMaxFilterValueBytes);
  }
  if (!bounded.ok()) return FinishWith(ctx, bounded);
  ledger::UploadQuery q;
  for (const std::string& b : req->buckets()) {
    absl::Status st = auth::CheckBucket(caller, b);
    if (!st.ok()) return FinishWith(ctx, st);
    q.buckets.push_back(b);
  }
  common::Deduplicate(q.buckets);
  if (q.buckets.empty()) q.buckets = caller.scope.buckets;
  q.callers = auth::ReadableCallers(caller);
  q.max_bytes = kListPageBytes - kListPageReserve;
  q.key_prefix = req->key_prefix();
  q.state = req->state();
  q.limit = req->page_size() == 0 ? 100 : req->page_size();
  // Only uploads the caller may see, so the page's last one can be the token.
  q.scope_prefixes = caller.scope.key_prefixes;
  if (!req->page_token().empty()) {
    absl::StatusOr<std::string> after = DecodePageToken(req->page_token());
    if (!after.ok()) return FinishWith(ctx, after.status());
    q.before_upload_id = *std::move(after);
  }
  auto* reactor = ctx->DefaultReactor();
  boost::asio::post(*reads_, [this, reactor, resp, caller = *std::move(caller_or), q = std::move(q)] {
    if (!q.before_upload_id.empty()) {
      // A token names an upload the caller was shown; anything else (forged,
      // another caller's, aged out) gets one answer.
      absl::StatusOr<v1::Upload> anchor = ledger_.GetUpload(q.before_upload_id);
      if (!anchor.ok() && !absl::IsNotFound(anchor.status())) {
        reactor->Finish(common::ToGrpcStatus(anchor.status()));
        return;
      }
      if (!anchor.ok() || !VisibleTo(*caller, *anchor)) {
        reactor->Finish(common::ToGrpcStatus(StalePageToken()));
        return;
      }
    }
    absl::StatusOr<ledger::UploadPage> page = ledger_.ListUploads(q);
    if (!page.ok()) {
      reactor->Finish(common::ToGrpcStatus(page.status()));
      return;
    }
    // The ledger applied the scope, so the last upload is one the caller sees.
    const bool more = page->next_before_seq > 0 && !page->uploads.empty() &&
                      VisibleTo(*caller, page->uploads.back());
    if (more) resp->set_next_page_token(EncodePageToken(page->uploads.back().upload_id()));
    for (v1::Upload& u : page->uploads) {
      if (VisibleTo(*caller, u)) *resp->add_uploads() = std::move(u);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* UploadBrokerService::Subscribe(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return stream::EventStreamer::Reject(common::ToGrpcStatus(caller.status()));
  absl::StatusOr<v1::SubscribeRequest> request = stream::EventStreamer::ParseRequest(*req);
  if (!request.ok()) return stream::EventStreamer::Reject(common::ToGrpcStatus(request.status()));
  return streamer_.Subscribe(ctx, *request, *caller);
}

grpc::Status UploadBrokerService::CreateMultipartUpload(
    grpc::ServerContext* ctx, const v1::CreateMultipartUploadRequest* req,
    v1::CreateMultipartUploadResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  return common::ToGrpcStatus(multipart_.Create(**caller, *req, resp));
}

grpc::Status UploadBrokerService::SignUploadParts(grpc::ServerContext* ctx,
                                                  const v1::SignUploadPartsRequest* req,
                                                  v1::SignUploadPartsResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  return common::ToGrpcStatus(multipart_.SignParts(**caller, *req, resp));
}

grpc::Status UploadBrokerService::ListUploadedParts(grpc::ServerContext* ctx,
                                                    const v1::ListUploadedPartsRequest* req,
                                                    v1::ListUploadedPartsResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  return common::ToGrpcStatus(multipart_.ListParts(**caller, *req, resp));
}

grpc::Status UploadBrokerService::CompleteMultipartUpload(
    grpc::ServerContext* ctx, const v1::CompleteMultipartUploadRequest* req,
    v1::CompleteMultipartUploadResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  return common::ToGrpcStatus(multipart_.Complete(**caller, *req, resp));
}

grpc::Status UploadBrokerService::AbortUpload(grpc::ServerContext* ctx,
                                              const v1::AbortUploadRequest* req,
                                              v1::AbortUploadResponse* resp) {
  auto caller = Caller(ctx);
  if (!caller.ok()) return common::ToGrpcStatus(caller.status());
  return common::ToGrpcStatus(multipart_.Abort(**caller, *req, resp));
}

}  // namespace uploadbroker::rpc
