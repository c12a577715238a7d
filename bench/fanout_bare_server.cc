// fanout_bare_server: the baseline for bench/fanout_bench.sh. It serves the
// same Subscribe method of uploadbroker.v1.UploadBroker over the same gRPC
// stack (callback API, raw method, same build flags and keepalive settings
// as the broker) but keeps events only in memory: no disk, no filter, no
// auth, no start position. A generator thread makes `--produce-rate`
// events/s, each stamped with committed_at = its send time, serializes each
// event once and pushes it to every stream's queue; each stream has one
// write in flight. Messages are framed exactly as the broker frames them
// (stream/event_batch.h): one event per message, or, when the request sets
// max_events_per_message > 1, everything queued (up to that many and
// 1 MiB) in one message. --serialize-per-write instead serializes a shared
// SubscribeResponse on every write (the previous bare server; one event per
// message only). Prints its port.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "absl/flags/flag.h"
#include "bench/fanout_event.h"
#include "common/grpc_keepalive.h"
#include "runtime/cli.h"
#include "stream/event_batch.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to listen on");
ABSL_FLAG(double, produce_rate, 0, "Events generated per second (0: none)");
ABSL_FLAG(bool, serialize_per_write, false,
          "Serialize the message on every write instead of once per event");

namespace {

using uploadbroker::v1::SubscribeResponse;
namespace stream = uploadbroker::stream;

// One generated event: its record (the serialized Event) and, for
// --serialize-per-write, the message holding it.
struct Msg {
  grpc::Slice record;
  std::shared_ptr<const SubscribeResponse> response;
};

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

class Stream final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  Stream(Hub& hub, uint32_t per_message)
      : hub_(hub), per_message_(std::clamp<uint32_t>(per_message, 1, stream::kMaxEventsPerMessage)) {
    hub_.Add(this);
    StartSendInitialMetadata();
  }

  void Push(const Msg& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    queue_.push_back(msg);
    if (!writing_) WriteLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    current_.Clear();
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
      return;
    }
    if (finished_ || queue_.empty()) return;
    WriteLocked();
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
  // Writes the front of the queue (or, with several events per message,
  // as much of it as fits). Queue not empty, no write in flight.
  void WriteLocked() {
    if (per_message_ > 1) {
      stream::MultiEventMessage message;
      while (!queue_.empty() && message.count() < per_message_ &&
             (message.count() == 0 ||
              message.SizeWith(queue_.front().record) <= stream::kMaxMessageBytes)) {
        message.Add(queue_.front().record);
        queue_.pop_front();
      }
      message.TakeInto(current_);
    } else if (absl::GetFlag(FLAGS_serialize_per_write)) {
      bool own = false;
      grpc::SerializationTraits<SubscribeResponse>::Serialize(*queue_.front().response, &current_,
                                                              &own);
      queue_.pop_front();
    } else {
      stream::SingleEventMessage(queue_.front().record, current_);
      queue_.pop_front();
    }
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(const grpc::Status& st) {
    if (finished_) return;
    finished_ = true;
    queue_.clear();
    Finish(st);
  }

  Hub& hub_;
  const uint32_t per_message_;
  std::mutex mu_;
  std::deque<Msg> queue_;
  grpc::ByteBuffer current_;
  bool writing_ = false;
  bool finished_ = false;
};

void Hub::Publish(const Msg& msg) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Stream* s : streams_) s->Push(msg);
}

class BareService final
    : public uploadbroker::v1::UploadBroker::WithRawCallbackMethod_Subscribe<
          uploadbroker::v1::UploadBroker::Service> {
 public:
  explicit BareService(Hub& hub) : hub_(hub) {}
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext*,
                                                       const grpc::ByteBuffer* raw) override {
    grpc::ByteBuffer copy(*raw);
    uploadbroker::v1::SubscribeRequest req;
    grpc::SerializationTraits<uploadbroker::v1::SubscribeRequest>::Deserialize(&copy, &req);
    return new Stream(hub_, req.max_events_per_message());
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
      hub.Publish({grpc::Slice(ev->SerializeAsString()), std::move(msg)});
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  uploadbroker::runtime::ParseCommandLine(
      argc, argv, {"fanout_bare_server",
                   "fanout_bare_server [flags]\n"
                   "The in-memory Subscribe fan-out baseline of bench/fanout_bench.sh.",
                   __FILE__});
  Hub hub;
  BareService service(hub);
  grpc::ServerBuilder builder;
  uploadbroker::common::SetServerKeepalive(builder);  // as the broker's server does
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
