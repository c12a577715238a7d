// TestBroker: a SqliteLedger, an EventStreamer and a gRPC server that serves
// only Subscribe (authenticated by the real Authenticator), so tests can
// append events straight to the ledger and watch them arrive over gRPC.
#ifndef UPLOADBROKER_TESTS_STREAM_TEST_BROKER_H_
#define UPLOADBROKER_TESTS_STREAM_TEST_BROKER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "auth/authenticator.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "ledger/sqlite_ledger.h"
#include "stream/event_streamer.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

namespace uploadbroker::testing {

// Callers: "app" sees photos under uploads/app/; "admin" sees photos and
// private, any key.
inline std::vector<config::Caller> TestCallers() {
  auto hash = [](const std::string& k) { return common::HexEncode(common::Sha256(k)); };
  config::Caller app;
  app.name = "app";
  app.api_key_sha256 = hash("key-app");
  app.buckets = {"photos"};
  app.key_prefixes = {"uploads/app/"};
  config::Caller admin;
  admin.name = "admin";
  admin.api_key_sha256 = hash("key-admin");
  admin.buckets = {"photos", "private"};
  admin.read_callers = {"*"};  // an operator: reads every caller's uploads
  return {app, admin};
}

// Subscribe is raw, as in rpc::UploadBrokerService.
class SubscribeOnlyService final
    : public v1::UploadBroker::WithRawCallbackMethod_Subscribe<v1::UploadBroker::Service> {
 public:
  SubscribeOnlyService(const auth::Authenticator& auth, stream::EventStreamer& streamer)
      : auth_(auth), streamer_(streamer) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* ctx,
                                                       const grpc::ByteBuffer* req) override {
    auto it = ctx->client_metadata().find("authorization");
    std::string header = it == ctx->client_metadata().end()
                             ? ""
                             : std::string(it->second.data(), it->second.size());
    auto caller = auth_.Authenticate(header);  // a Principal
    if (!caller.ok()) {
      return stream::EventStreamer::Reject(
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(caller.status().message())));
    }
    auto request = stream::EventStreamer::ParseRequest(*req);
    if (!request.ok()) {
      return stream::EventStreamer::Reject(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(request.status().message())));
    }
    return streamer_.Subscribe(ctx, *request, *caller);
  }

 private:
  const auth::Authenticator& auth_;
  stream::EventStreamer& streamer_;
};

class TestBroker {
 public:
  struct Options {
    std::string db_path;
    int port = 0;  // 0: any free port
    int64_t retain_max_events = 0;
    stream::EventStreamer::Options streamer;
  };

  explicit TestBroker(Options options) : callers_(TestCallers()), auth_(callers_) {
    ledger::SqliteLedger::Options lo;
    lo.path = options.db_path;
    lo.clock = &clock_;
    lo.retain_max_events = options.retain_max_events;
    auto ledger = ledger::SqliteLedger::Create(lo);
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    ledger_ = *std::move(ledger);
    streamer_ = std::make_unique<stream::EventStreamer>(*ledger_, options.streamer);
    service_ = std::make_unique<SubscribeOnlyService>(auth_, *streamer_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", options.port),
                             grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_NE(port_, 0);
  }

  ~TestBroker() { Stop(); }

  void Stop() {
    if (server_ == nullptr) return;
    streamer_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
    server_.reset();
    streamer_.reset();
    ledger_.reset();
  }

  // What SIGHUP does to a broker (server::Server::ReloadCallers): new
  // callers, then the open streams re-checked against them.
  void Reload(const std::vector<config::Caller>& callers) {
    auth_.Reload(callers);
    streamer_->Recheck(auth_);
  }
  const auth::Authenticator& auth() const { return auth_; }

  int port() const { return port_; }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }
  ledger::SqliteLedger& ledger() { return *ledger_; }
  stream::EventStreamer& streamer() { return *streamer_; }

 private:
  common::RealClock clock_;
  std::vector<config::Caller> callers_;
  auth::Authenticator auth_;
  std::unique_ptr<ledger::SqliteLedger> ledger_;
  std::unique_ptr<stream::EventStreamer> streamer_;
  std::unique_ptr<SubscribeOnlyService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// One client stream, on its own connection.
class Sub {
 public:
  Sub(const std::string& target, const std::string& api_key, const v1::SubscribeRequest& req,
      grpc::ChannelArguments args = {}) {
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    stub_ = v1::UploadBroker::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    if (!api_key.empty()) ctx_.AddMetadata("authorization", "Bearer " + api_key);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    reader_ = stub_->Subscribe(&ctx_, req);
  }

  // Waits until the broker has resolved the start; returns the cursor the
  // stream starts after, or -1 when the stream ended instead.
  int64_t Started() {
    reader_->WaitForInitialMetadata();
    const auto& md = ctx_.GetServerInitialMetadata();
    auto it = md.find(stream::kStartCursorMetadata);
    uint64_t c = 0;
    if (it == md.end() ||
        !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &c)) {
      return -1;
    }
    return static_cast<int64_t>(c);
  }

  // Reads up to n events (fewer if the stream ends); returns their cursors.
  std::vector<uint64_t> Read(size_t n) {
    std::vector<uint64_t> cursors;
    v1::SubscribeResponse resp;
    while (cursors.size() < n && reader_->Read(&resp)) cursors.push_back(resp.event().cursor());
    last_ = resp;
    return cursors;
  }

  const v1::SubscribeResponse& last() const { return last_; }
  grpc::Status Finish() { return reader_->Finish(); }
  void Cancel() { ctx_.TryCancel(); }

 private:
  std::unique_ptr<v1::UploadBroker::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader_;
  v1::SubscribeResponse last_;
};

struct UploadSpec {
  std::string bucket = "photos";
  std::string key;
  std::string caller = "app";
  std::map<std::string, std::string> metadata;
};

// Creates an intent and completes it (or expires it); returns the event's
// cursor (0 on failure, which is also reported).
// Cursors first..last, the order a complete delivery has.
inline std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
  std::vector<uint64_t> v;
  for (uint64_t c = first; c <= last; ++c) v.push_back(c);
  return v;
}

inline uint64_t AppendEvent(ledger::Ledger& ledger, const std::string& id, const UploadSpec& spec,
                            bool expire = false) {
  v1::Upload u;
  u.set_upload_id(id);
  u.set_caller(spec.caller);
  u.set_bucket(spec.bucket);
  u.set_key(spec.key.empty() ? "uploads/app/" + id : spec.key);
  u.set_max_size(1 << 20);
  u.mutable_metadata()->insert(spec.metadata.begin(), spec.metadata.end());
  u.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
  u.set_method(v1::UPLOAD_METHOD_POST);
  absl::Status created = ledger::CreateIntentSync(ledger, u);
  EXPECT_TRUE(created.ok()) << created;
  if (!created.ok()) return 0;
  if (expire) {
    auto event = ledger::ExpireUploadSync(ledger, id);
    EXPECT_TRUE(event.ok()) << event.status();
    return event.ok() ? event->cursor() : 0;
  }
  v1::Completion c;
  c.set_key(u.key());
  c.set_size(42);
  c.set_etag("etag-" + id);
  c.set_source(v1::COMPLETION_SOURCE_CALLBACK);
  auto result = ledger::CompleteUploadSync(ledger, id, c);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->event.cursor() : 0;
}

// Polls `cond` until it holds or `timeout` passes (for state that has no
// notification, such as the streamer's registry). The default is generous:
// a true condition returns at once, only a broken one waits it out.
template <typename Cond>
bool Eventually(Cond cond, absl::Duration timeout = absl::Seconds(60)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!cond()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_STREAM_TEST_BROKER_H_
