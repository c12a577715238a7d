// bare_echo_server: the baseline for bench/policy_bench.sh. It serves the same
// CreatePostPolicy method over the same gRPC stack (callback API, same
// build flags) but does no work: no auth, no signing, no ledger. h2load
// drives both identically, so the ratio isolates the broker's own cost.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to listen on");

namespace {

class EchoService final : public uploadbroker::v1::UploadBroker::CallbackService {
  grpc::ServerUnaryReactor* CreatePostPolicy(
      grpc::CallbackServerContext* ctx, const uploadbroker::v1::CreatePostPolicyRequest* req,
      uploadbroker::v1::CreatePostPolicyResponse* resp) override {
    resp->set_key(req->key());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 2;
  std::cout << port << std::endl;
  server->Wait();
}
