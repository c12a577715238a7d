// ArenaMessageAllocator: gives each unary call a protobuf Arena for its
// request and response. Parsing the request and building the response then
// allocate from one block that is freed in one step when gRPC releases the
// call, instead of one heap allocation per string and repeated field (an
// issued form has a dozen of each).
//
// Install with the generated SetMessageAllocatorFor_<Method>(); the
// allocator must outlive the server. Thread-safe (it keeps no state).
#ifndef UPLOADBROKER_RPC_ARENA_ALLOCATOR_H_
#define UPLOADBROKER_RPC_ARENA_ALLOCATOR_H_

#include <google/protobuf/arena.h>
#include <grpcpp/support/message_allocator.h>

namespace uploadbroker::rpc {

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  // The first block lives inside the holder, so a call whose messages fit
  // in it costs one allocation in all.
  static constexpr size_t kInlineBlock = 8192;

  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options(block_)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kInlineBlock;
      return options;
    }

    alignas(8) char block_[kInlineBlock];
    google::protobuf::Arena arena_;  // after block_, which it uses
  };
};

}  // namespace uploadbroker::rpc

#endif  // UPLOADBROKER_RPC_ARENA_ALLOCATOR_H_
