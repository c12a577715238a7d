// UploadBrokerService: the gRPC adapter (callback API). It authenticates the
// caller (API key, or a verified client certificate when the connection is
// mutual TLS), delegates to the Issuer, the Ledger and (for Subscribe) the
// EventStreamer, and converts statuses at the edge.
//
// Handlers never block a gRPC callback thread on the ledger: issuance
// finishes from the ledger's commit callback; GetUpload and ListUploads read
// the ledger (a disk read on SQLite, a round trip on PostgreSQL) on a small
// pool the service owns, and finish the call's reactor from there. The
// multipart calls and AbortUpload talk to OSS (seconds at worst), so they are
// synchronous methods: they block a thread of gRPC's synchronous pool, never
// a callback-API thread.
//
// Visibility: GetUpload, ListUploads and Subscribe show a caller only the
// uploads issued to it (or to the callers its read_callers name, "*" for
// all), inside its buckets and key prefixes; others look absent (NOT_FOUND).
// ListUploads pages by the last upload shown (rpc/page_token.h), never by
// a global sequence number.
// GetUpload answers every absent upload with the same words (NoUpload):
// never issued, another caller's, or aged out of ledger.retain_settled.
//
// Thread-safe. Referenced components must outlive the service; stop the
// grpc::Server (which waits for in-flight calls) before destroying it. The
// destructor waits for the pool's queued reads.
#ifndef UPLOADBROKER_RPC_SERVICE_H_
#define UPLOADBROKER_RPC_SERVICE_H_

#include <memory>

#include "auth/authenticator.h"
#include "deliver/consume_dispatcher.h"
#include "issue/issuer.h"
#include "issue/multipart_issuer.h"
#include "ledger/ledger.h"
#include "rpc/arena_allocator.h"
#include "stream/event_streamer.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace uploadbroker::rpc {

// GetUpload's NOT_FOUND message for every upload the caller cannot read.
std::string NoUpload(absl::string_view upload_id);

// Subscribe is a raw method (ByteBuffer in and out): the streamer writes
// messages built from the ledger's stored records instead of serializing
// each event again for every stream.
using ServiceBase = v1::UploadBroker::WithCallbackMethod_CreatePostPolicy<
    v1::UploadBroker::WithCallbackMethod_CreatePresignedPut<
        v1::UploadBroker::WithCallbackMethod_GetUpload<v1::UploadBroker::WithCallbackMethod_ListUploads<
            v1::UploadBroker::WithRawCallbackMethod_Subscribe<
                v1::UploadBroker::WithCallbackMethod_Consume<v1::UploadBroker::Service>>>>>>;

class UploadBrokerService final : public ServiceBase {
 public:
  // Threads that run ledger reads for GetUpload and ListUploads.
  static constexpr int kReadThreads = 2;
  // Largest serialized ListUploadsResponse: a page ends before an upload
  // that would take it past this, and carries a next_page_token (one upload
  // is far smaller, see common/request_limits.h). The reserve covers the
  // token.
  static constexpr size_t kListPageBytes = 1 << 20;
  static constexpr size_t kListPageReserve = 64;

  UploadBrokerService(const auth::Authenticator& auth, issue::Issuer& issuer,
                      issue::MultipartIssuer& multipart, ledger::Ledger& ledger,
                      stream::EventStreamer& streamer,
                      deliver::ConsumeDispatcher* consume = nullptr);
  ~UploadBrokerService() override;

  grpc::ServerUnaryReactor* CreatePostPolicy(
      grpc::CallbackServerContext* ctx, const v1::CreatePostPolicyRequest* req,
      v1::CreatePostPolicyResponse* resp) override;
  grpc::ServerUnaryReactor* CreatePresignedPut(
      grpc::CallbackServerContext* ctx, const v1::CreatePresignedPutRequest* req,
      v1::CreatePresignedPutResponse* resp) override;
  grpc::ServerUnaryReactor* GetUpload(grpc::CallbackServerContext* ctx,
                                      const v1::GetUploadRequest* req,
                                      v1::Upload* resp) override;
  grpc::ServerUnaryReactor* ListUploads(grpc::CallbackServerContext* ctx,
                                        const v1::ListUploadsRequest* req,
                                        v1::ListUploadsResponse* resp) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* ctx,
                                                       const grpc::ByteBuffer* req) override;

  grpc::Status CreateMultipartUpload(grpc::ServerContext* ctx,
                                     const v1::CreateMultipartUploadRequest* req,
                                     v1::CreateMultipartUploadResponse* resp) override;
  grpc::Status SignUploadParts(grpc::ServerContext* ctx, const v1::SignUploadPartsRequest* req,
                               v1::SignUploadPartsResponse* resp) override;
  grpc::Status ListUploadedParts(grpc::ServerContext* ctx,
                                 const v1::ListUploadedPartsRequest* req,
                                 v1::ListUploadedPartsResponse* resp) override;
  grpc::Status CompleteMultipartUpload(grpc::ServerContext* ctx,
                                       const v1::CompleteMultipartUploadRequest* req,
                                       v1::CompleteMultipartUploadResponse* resp) override;
  grpc::Status AbortUpload(grpc::ServerContext* ctx, const v1::AbortUploadRequest* req,
                           v1::AbortUploadResponse* resp) override;

  // Durable subscriptions (subscription_rpcs.cc). Owner-only: a name is
  // looked up among the caller's own subscriptions, so another caller's is
  // NOT_FOUND with the same message as an unknown one. They wait for the
  // ledger (a commit for writes), so they are synchronous methods, like the
  // multipart calls. Consume is served by the ConsumeDispatcher
  // (UNIMPLEMENTED without one).
  grpc::Status CreateSubscription(grpc::ServerContext* ctx,
                                  const v1::CreateSubscriptionRequest* req,
                                  v1::CreateSubscriptionResponse* resp) override;
  grpc::Status GetSubscription(grpc::ServerContext* ctx, const v1::GetSubscriptionRequest* req,
                               v1::GetSubscriptionResponse* resp) override;
  grpc::Status ListSubscriptions(grpc::ServerContext* ctx,
                                 const v1::ListSubscriptionsRequest* req,
                                 v1::ListSubscriptionsResponse* resp) override;
  grpc::Status DeleteSubscription(grpc::ServerContext* ctx,
                                  const v1::DeleteSubscriptionRequest* req,
                                  v1::DeleteSubscriptionResponse* resp) override;
  grpc::ServerBidiReactor<v1::ConsumeRequest, v1::ConsumeResponse>* Consume(
      grpc::CallbackServerContext* ctx) override;
  grpc::Status ListDeadLetters(grpc::ServerContext* ctx, const v1::ListDeadLettersRequest* req,
                               v1::ListDeadLettersResponse* resp) override;
  grpc::Status RedriveDeadLetters(grpc::ServerContext* ctx,
                                  const v1::RedriveDeadLettersRequest* req,
                                  v1::RedriveDeadLettersResponse* resp) override;

 private:
  // The authenticated caller; the Principal keeps its caller snapshot alive
  // for as long as the call holds it.
  absl::StatusOr<auth::Principal> Caller(const grpc::ServerContextBase* ctx) const;

  const auth::Authenticator& auth_;
  issue::Issuer& issuer_;
  issue::MultipartIssuer& multipart_;
  ledger::Ledger& ledger_;
  stream::EventStreamer& streamer_;
  deliver::ConsumeDispatcher* const consume_;
  std::unique_ptr<boost::asio::thread_pool> reads_;
  // Issuance builds large responses (a signed form is ~3.5 KB in a dozen
  // strings), so those calls get an arena each.
  ArenaMessageAllocator<v1::CreatePostPolicyRequest, v1::CreatePostPolicyResponse>
      post_policy_messages_;
  ArenaMessageAllocator<v1::CreatePresignedPutRequest, v1::CreatePresignedPutResponse>
      presigned_put_messages_;
};

}  // namespace uploadbroker::rpc

#endif  // UPLOADBROKER_RPC_SERVICE_H_
