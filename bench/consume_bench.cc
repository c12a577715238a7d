// consume_bench: Consume (leases, acks) side by side with plain Subscribe
// on the same log, in one process and one run (bench/consume_bench.sh).
//
// It opens the ledger the config names, hosts the broker's gRPC API as
// server.cc does (UploadBrokerService with EventStreamer and
// ConsumeDispatcher), then:
//   1. throughput: --events completed events are stored; plain Subscribe
//      reads them all from EARLIEST (one stream, then --consumers streams,
//      each reading every event), and --consumers Consume streams share one
//      subscription from EARLIEST, acknowledging each message's events as
//      they arrive, until every event is acknowledged. Deliveries/s each.
//   2. latency: events are completed at --rate per second for --seconds
//      while --consumers Consume streams (acking) read a subscription
//      started at LATEST; commit -> consumer latency (the event's
//      committed_at to its arrival) p50/p99/max.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "auth/authenticator.h"
#include "bench/fanout_event.h"
#include "common/clock.h"
#include "common/grpc_keepalive.h"
#include "config/config.h"
#include "credentials/credential_provider.h"
#include "deliver/consume_dispatcher.h"
#include "issue/issuer.h"
#include "issue/multipart_issuer.h"
#include "ledger/ledger.h"
#include "rpc/service.h"
#include "runtime/cli.h"
#include "server/open_ledger.h"
#include "stream/event_streamer.h"

ABSL_FLAG(std::string, config, "", "Broker config file (caller 'bench', key in --key)");
ABSL_FLAG(std::string, key, "bench-key", "API key of caller 'bench'");
ABSL_FLAG(int64_t, events, 20000, "Stored events for the throughput runs");
ABSL_FLAG(int32_t, consumers, 4, "Consume streams (and Subscribe streams in the second run)");
ABSL_FLAG(int32_t, max_in_flight, 256, "Consume max_in_flight per stream");
ABSL_FLAG(double, rate, 2000, "Events completed per second in the latency run");
ABSL_FLAG(int32_t, seconds, 10, "Length of the latency run");

namespace ub = uploadbroker;
namespace v1 = uploadbroker::v1;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Creates intents [first, last) and (if `complete`) completes them, at most
// 4096 in flight.
void Fill(ub::ledger::Ledger& ledger, int64_t first, int64_t last, bool complete) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0;
  for (int64_t i = first; i < last; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < 4096; });
      ++in_flight;
    }
    auto done = [&](bool) {
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      cv.notify_all();
    };
    v1::Upload u = ub::bench::BenchIntent(ub::bench::BenchId(i));
    ledger.CreateIntent(u, [&ledger, u, done, complete](absl::Status st) {
      if (!st.ok() || !complete) return done(st.ok());
      ledger.CompleteUpload(u.upload_id(), ub::bench::BenchCompletion(u),
                            [done](absl::StatusOr<ub::ledger::CompleteResult> r) { done(r.ok()); });
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
}

struct Client {
  explicit Client(const std::string& target, const std::string& key)
      : stub(v1::UploadBroker::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))),
        key(key) {}
  void Prepare(grpc::ClientContext* ctx) { ctx->AddMetadata("authorization", "Bearer " + key); }
  std::unique_ptr<v1::UploadBroker::Stub> stub;
  std::string key;
};

bool CreateSubscription(Client& c, const std::string& name, v1::StartPosition start) {
  grpc::ClientContext ctx;
  c.Prepare(&ctx);
  v1::CreateSubscriptionRequest req;
  req.set_name(name);
  req.set_start(start);
  v1::CreateSubscriptionResponse resp;
  grpc::Status st = c.stub->CreateSubscription(&ctx, req, &resp);
  if (!st.ok()) std::cerr << "CreateSubscription: " << st.error_message() << std::endl;
  return st.ok();
}

// `streams` Subscribe streams from EARLIEST, each until it has `want`
// events; deliveries per second in all.
double SubscribeRun(const std::string& target, const std::string& key, int streams, int64_t want) {
  std::vector<std::thread> threads;
  const double t0 = Now();
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&] {
      Client c(target, key);  // a channel each, as separate backends have
      grpc::ClientContext ctx;
      c.Prepare(&ctx);
      v1::SubscribeRequest req;
      req.set_start(v1::START_POSITION_EARLIEST);
      req.set_max_events_per_message(256);
      auto reader = c.stub->Subscribe(&ctx, req);
      int64_t got = 0;
      v1::SubscribeResponse resp;
      while (got < want && reader->Read(&resp)) got += resp.events_size() + (resp.has_event() ? 1 : 0);
      ctx.TryCancel();
      reader->Finish();
    });
  }
  for (auto& t : threads) t.join();
  return static_cast<double>(want) * streams / (Now() - t0);
}

// `streams` Consume streams on `name`, acking everything, until `want`
// events are acknowledged in all (or `stop`). Latencies (seconds from
// committed_at) are appended to `latencies` when not null.
double ConsumeRun(const std::string& target, const std::string& key, const std::string& name,
                  int streams, int64_t want, std::vector<double>* latencies) {
  std::atomic<int64_t> acked{0};
  std::mutex lat_mu;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  for (int s = 0; s < streams; ++s) contexts.push_back(std::make_unique<grpc::ClientContext>());
  std::vector<std::thread> threads;
  const double t0 = Now();
  std::atomic<double> t_end{0};
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      Client c(target, key);
      grpc::ClientContext& ctx = *contexts[s];
      c.Prepare(&ctx);
      auto stream = c.stub->Consume(&ctx);
      v1::ConsumeRequest first;
      first.set_subscription(name);
      first.set_max_in_flight(static_cast<uint32_t>(absl::GetFlag(FLAGS_max_in_flight)));
      stream->Write(first);
      v1::ConsumeResponse resp;
      std::vector<double> mine;
      while (stream->Read(&resp)) {
        const double now = Now();
        v1::ConsumeRequest ack;
        for (const v1::Delivery& d : resp.deliveries()) {
          ack.add_ack_cursors(d.cursor());
          const auto& ts = d.event().committed_at();
          mine.push_back(now - (static_cast<double>(ts.seconds()) + ts.nanos() / 1e9));
        }
        stream->Write(ack);
        if (acked.fetch_add(ack.ack_cursors_size()) + ack.ack_cursors_size() >= want) {
          t_end = Now();
          for (auto& other : contexts) other->TryCancel();
          break;
        }
      }
      stream->Finish();
      if (latencies != nullptr) {
        std::lock_guard<std::mutex> lock(lat_mu);
        latencies->insert(latencies->end(), mine.begin(), mine.end());
      }
    });
  }
  for (auto& t : threads) t.join();
  return static_cast<double>(want) / (t_end.load() - t0);
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  ub::runtime::ParseCommandLine(argc, argv,
                                {"consume_bench", "consume_bench --config FILE [flags]", __FILE__});
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ub::common::RealClock clock;
  auto config = ub::config::LoadConfig(absl::GetFlag(FLAGS_config));
  if (!config.ok()) {
    std::cerr << config.status() << std::endl;
    return 2;
  }
  auto creds = ub::credentials::CredentialProvider::Create(config->credentials, &clock);
  auto ledger_or = ub::server::OpenLedger(*config, clock);
  if (!creds.ok() || !ledger_or.ok()) {
    std::cerr << "setup failed" << std::endl;
    return 2;
  }
  ub::ledger::Ledger& ledger = **ledger_or;
  const int64_t events = absl::GetFlag(FLAGS_events);
  const int consumers = absl::GetFlag(FLAGS_consumers);
  const double fill0 = Now();
  Fill(ledger, 0, events, /*complete=*/true);
  std::cerr << "stored " << events << " events in " << Now() - fill0 << " s" << std::endl;

  ub::auth::Authenticator auth(config->callers);
  ub::issue::Issuer issuer(*config, **creds, ledger, clock);
  ub::ossapi::MultipartClient oss_multipart(**creds, clock);
  ub::issue::MultipartIssuer multipart(*config, **creds, ledger, oss_multipart, clock);
  auto streamer = std::make_unique<ub::stream::EventStreamer>(ledger);
  auto consume = std::make_unique<ub::deliver::ConsumeDispatcher>(
      ledger, nullptr, ub::deliver::ConsumeDispatcher::Options());
  ub::rpc::UploadBrokerService service(auth, issuer, multipart, ledger, *streamer, consume.get());
  grpc::ServerBuilder builder;
  ub::common::SetServerKeepalive(builder);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 2;
  const std::string target = absl::StrCat("127.0.0.1:", port);
  const std::string key = absl::GetFlag(FLAGS_key);
  Client admin(target, key);

  // 1. Throughput on the stored log.
  const double sub1 = SubscribeRun(target, key, 1, events);
  const double subn = SubscribeRun(target, key, consumers, events);
  if (!CreateSubscription(admin, "throughput", v1::START_POSITION_EARLIEST)) return 1;
  const double cons = ConsumeRun(target, key, "throughput", consumers, events, nullptr);
  std::cout << "throughput over " << events << " stored events:\n"
            << "  Subscribe, 1 stream:            " << static_cast<int64_t>(sub1)
            << " deliveries/s\n"
            << "  Subscribe, " << consumers << " streams (each all): " << static_cast<int64_t>(subn)
            << " deliveries/s in all\n"
            << "  Consume, " << consumers << " consumers, acks:   " << static_cast<int64_t>(cons)
            << " deliveries/s (" << cons / sub1 << "x Subscribe 1 stream, " << cons / subn
            << "x Subscribe " << consumers << " streams)\n";

  // 2. Latency at --rate.
  if (!CreateSubscription(admin, "latency", v1::START_POSITION_LATEST)) return 1;
  const double rate = absl::GetFlag(FLAGS_rate);
  const int64_t live = static_cast<int64_t>(rate * absl::GetFlag(FLAGS_seconds));
  std::vector<double> latencies;
  std::thread consumer_threads([&] {
    ConsumeRun(target, key, "latency", consumers, live, &latencies);
  });
  absl::SleepFor(absl::Milliseconds(300));  // streams open
  {
    // Intents first, then completions paced every millisecond.
    Fill(ledger, events, events + live, /*complete=*/false);
    const double start = Now();
    int64_t made = 0;
    while (made < live) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const int64_t due = std::min(live, static_cast<int64_t>((Now() - start) * rate));
      for (; made < due; ++made) {
        v1::Upload u = ub::bench::BenchIntent(ub::bench::BenchId(events + made));
        ledger.CompleteUpload(u.upload_id(), ub::bench::BenchCompletion(u),
                              [](absl::StatusOr<ub::ledger::CompleteResult>) {});
      }
    }
  }
  consumer_threads.join();
  const size_t n = latencies.size();
  std::cout << "latency, " << rate << " events/s for " << absl::GetFlag(FLAGS_seconds) << " s, "
            << consumers << " consumers acking (" << n << " deliveries):\n"
            << "  commit -> consumer p50 " << Percentile(latencies, 0.50) * 1e3 << " ms, p99 "
            << Percentile(latencies, 0.99) * 1e3 << " ms, max "
            << Percentile(latencies, 1.0) * 1e3 << " ms\n";
  consume->Shutdown();
  streamer->Shutdown();
  server->Shutdown();
  return 0;
}
