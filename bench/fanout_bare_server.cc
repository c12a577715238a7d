// fanout_bare_server: the baseline for bench/fanout_bench.sh. It serves the
// same Subscribe method of uploadbroker.v1.UploadBroker over the same gRPC
// stack (callback API, same build flags and keepalive settings as the
// broker) but keeps events only in memory: no disk, no filter, no auth, no
// start position. A generator thread makes `--produce_rate` events/s, each
// stamped with committed_at = its send time, and pushes every event to every
// stream's queue; each stream has one write in flight. Prints its port.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/fanout_event.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to listen on");
ABSL_FLAG(double, produce_rate, 0, "Events generated per second (0: none)");

namespace {

using uploadbroker::v1::SubscribeResponse;
using Msg = std::shared_ptr<const SubscribeResponse>;

class Stream;

class Hub {
 public:
  void Add(Stream* s) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.insert(s);
  }
  void Remove(Stream* s) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.erase(s);
  }
  void Publish(const Msg& msg);

 private:
  std::mutex mu_;
  std::set<Stream*> streams_;
};

class Stream final : public grpc::ServerWriteReactor<SubscribeResponse> {
 public:
  explicit Stream(Hub& hub) : hub_(hub) {
    hub_.Add(this);
    StartSendInitialMetadata();
  }

  void Push(const Msg& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (writing_) {
      queue_.push_back(msg);
      return;
    }
    current_ = msg;
    writing_ = true;
    StartWrite(current_.get());
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    current_.reset();
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    if (finished_ || queue_.empty()) return;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(current_.get());
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    hub_.Remove(this);
    delete this;
  }

 private:
  void FinishLocked(const grpc::Status& st) {
    if (finished_) return;
    finished_ = true;
    queue_.clear();
    Finish(st);
  }

  Hub& hub_;
  std::mutex mu_;
  std::deque<Msg> queue_;
  Msg current_;
  bool writing_ = false;
  bool finished_ = false;
};

void Hub::Publish(const Msg& msg) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Stream* s : streams_) s->Push(msg);
}

class BareService final : public uploadbroker::v1::UploadBroker::CallbackService {
 public:
  explicit BareService(Hub& hub) : hub_(hub) {}
  grpc::ServerWriteReactor<SubscribeResponse>* Subscribe(
      grpc::CallbackServerContext*, const uploadbroker::v1::SubscribeRequest*) override {
    return new Stream(hub_);
  }

 private:
  Hub& hub_;
};

// Makes `rate` events/s (paced every millisecond) until the process ends.
void Generate(Hub& hub, double rate) {
  namespace ub = uploadbroker;
  const auto start = std::chrono::steady_clock::now();
  int64_t made = 0;
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto due = static_cast<int64_t>(elapsed * rate);
    for (; made < due; ++made) {
      auto msg = std::make_shared<SubscribeResponse>();
      ub::v1::Event* ev = msg->mutable_event();
      ub::v1::Upload u = ub::bench::BenchIntent(ub::bench::BenchId(made));
      *u.mutable_completion() = ub::bench::BenchCompletion(u);
      u.set_state(ub::v1::UPLOAD_STATE_COMPLETED);
      ev->set_cursor(static_cast<uint64_t>(made + 1));
      ev->set_type(ub::v1::EVENT_TYPE_UPLOAD_COMPLETED);
      const absl::Time now = absl::Now();
      ub::bench::SetTime(now, u.mutable_completion()->mutable_completed_at());
      ub::bench::SetTime(now, ev->mutable_committed_at());
      *ev->mutable_upload_completed()->mutable_upload() = std::move(u);
      hub.Publish(msg);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Hub hub;
  BareService service(hub);
  grpc::ServerBuilder builder;
  // Same channel arguments as the broker (service/server/server.cc).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 2;
  const double rate = absl::GetFlag(FLAGS_produce_rate);
  if (rate > 0) std::thread([&hub, rate] { Generate(hub, rate); }).detach();
  std::cout << "port=" << port << " last_cursor=0" << std::endl;
  server->Wait();
}
