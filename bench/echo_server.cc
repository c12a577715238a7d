// bare_echo_server: the baselines for bench/policy_bench.sh. It serves the
// same CreatePostPolicy method over the same gRPC stack (callback API, same
// build flags) but does no work: no auth, no signing, no ledger. h2load
// drives it and the broker identically, so the ratio isolates the broker's
// own cost.
//
// By default it answers inline, with the request's key: the bare server
// the issuance target is set against. With --commit-file it is instead a
// bare durable server: each call appends a record to that file and is
// answered from a commit thread once an fdatasync covering it has returned
// (one fdatasync shared by every call queued meanwhile, as the broker's
// ledger does), with --response-bytes of filler in the answer. It shows what
// answering after a shared commit costs this gRPC stack by itself.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "runtime/cli.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to listen on");
ABSL_FLAG(std::string, commit_file, "",
          "Answer only after appending to this file and fdatasync (group commit)");
ABSL_FLAG(int, response_bytes, 0, "Filler bytes in each answer (policy_json)");

namespace {

using uploadbroker::v1::CreatePostPolicyRequest;
using uploadbroker::v1::CreatePostPolicyResponse;

// Appends one record per call and answers the calls whose records an
// fdatasync has covered, from its own thread.
class GroupCommitter {
 public:
  explicit GroupCommitter(const std::string& path)
      : fd_(open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) {
      std::perror(path.c_str());
      std::exit(2);
    }
    std::thread([this] { Run(); }).detach();
  }

  void Submit(std::string record, grpc::ServerUnaryReactor* reactor) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.emplace_back(std::move(record), reactor);
    }
    wake_.notify_one();
  }

 private:
  void Run() {
    std::vector<std::pair<std::string, grpc::ServerUnaryReactor*>> batch;
    std::string bytes;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [this] { return !queue_.empty(); });
        batch.swap(queue_);
      }
      bytes.clear();
      for (const auto& [record, reactor] : batch) bytes += record;
      grpc::Status status = grpc::Status::OK;
      if (write(fd_, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
          fdatasync(fd_) != 0) {
        status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "commit failed");
      }
      for (const auto& [record, reactor] : batch) reactor->Finish(status);
      batch.clear();
    }
  }

  const int fd_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::pair<std::string, grpc::ServerUnaryReactor*>> queue_;
};

class EchoService final : public uploadbroker::v1::UploadBroker::CallbackService {
 public:
  EchoService(GroupCommitter* committer, int response_bytes)
      : committer_(committer), filler_(static_cast<size_t>(response_bytes), 'x') {}

  grpc::ServerUnaryReactor* CreatePostPolicy(grpc::CallbackServerContext* ctx,
                                             const CreatePostPolicyRequest* req,
                                             CreatePostPolicyResponse* resp) override {
    resp->set_key(req->key());
    if (!filler_.empty()) resp->set_policy_json(filler_);
    auto* reactor = ctx->DefaultReactor();
    if (committer_ == nullptr) {
      reactor->Finish(grpc::Status::OK);
    } else {
      committer_->Submit(req->SerializeAsString(), reactor);
    }
    return reactor;
  }

 private:
  GroupCommitter* const committer_;
  const std::string filler_;
};

}  // namespace

int main(int argc, char** argv) {
  uploadbroker::runtime::ParseCommandLine(
      argc, argv, {"bare_echo_server",
                   "bare_echo_server [flags]\n"
                   "The do-nothing CreatePostPolicy server bench/policy_bench.sh compares the broker with.",
                   __FILE__});
  std::unique_ptr<GroupCommitter> committer;
  if (!absl::GetFlag(FLAGS_commit_file).empty()) {
    committer = std::make_unique<GroupCommitter>(absl::GetFlag(FLAGS_commit_file));
  }
  EchoService service(committer.get(), absl::GetFlag(FLAGS_response_bytes));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 2;
  std::cout << port << std::endl;
  server->Wait();
}
