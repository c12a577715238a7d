// fanout_broker_server: the broker side of bench/fanout_bench.sh. It hosts
// the broker's gRPC API exactly as service/server/server.cc does (config
// file, the ledger it names (SQLite or PostgreSQL), Authenticator, Issuer, EventStreamer,
// UploadBrokerService, same channel arguments) minus the HTTP listener, and
// adds bench-only event production from inside the process, the way OSS
// callbacks reach the ledger (CompleteUpload of a pending intent):
//   --prefill N        before serving: create and complete N events
//                      (concurrently, group-committed) for replay runs;
//   --intents N        before serving: create N pending intents;
//   --produce-rate R   while serving: complete R of those intents per second
//                      (paced every millisecond) until they run out.
// Prints "port=P last_cursor=C" on stdout when ready.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "auth/authenticator.h"
#include "bench/fanout_event.h"
#include "common/clock.h"
#include "common/grpc_keepalive.h"
#include "config/config.h"
#include "credentials/credential_provider.h"
#include "issue/issuer.h"
#include "issue/multipart_issuer.h"
#include "ledger/ledger.h"
#include "server/open_ledger.h"
#include "rpc/service.h"
#include "runtime/cli.h"
#include "stream/event_streamer.h"

ABSL_FLAG(std::string, config, "", "Broker config file");
ABSL_FLAG(int64_t, prefill, 0, "Completed events to store before serving");
ABSL_FLAG(int64_t, intents, 0, "Pending intents to create before serving");
ABSL_FLAG(double, produce_rate, 0, "Intents completed per second while serving");

namespace ub = uploadbroker;

namespace {

// Runs `op(i, done)` for i in [first, last) with at most `window` in flight.
template <typename Op>
void RunConcurrently(int64_t first, int64_t last, int window, Op op) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t in_flight = 0;
  std::atomic<int64_t> failed{0};
  for (int64_t i = first; i < last; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    op(i, [&](bool ok) {
      if (!ok) failed++;
      std::lock_guard<std::mutex> lock(mu);
      --in_flight;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
  if (failed > 0) std::cerr << failed << " setup writes failed" << std::endl;
}

void Complete(ub::ledger::Ledger& ledger, int64_t i, std::function<void(bool)> done) {
  ub::v1::Upload u = ub::bench::BenchIntent(ub::bench::BenchId(i));
  ledger.CompleteUpload(u.upload_id(), ub::bench::BenchCompletion(u),
                        [done](absl::StatusOr<ub::ledger::CompleteResult> r) { done(r.ok()); });
}

void CreateThenMaybeComplete(ub::ledger::Ledger& ledger, int64_t i, bool complete,
                             std::function<void(bool)> done) {
  ledger.CreateIntent(ub::bench::BenchIntent(ub::bench::BenchId(i)),
                      [&ledger, i, complete, done](absl::Status st) {
                        if (!st.ok() || !complete) return done(st.ok());
                        // Allowed: a done callback may start (not wait for) a write.
                        Complete(ledger, i, done);
                      });
}

}  // namespace

int main(int argc, char** argv) {
  uploadbroker::runtime::ParseCommandLine(
      argc, argv, {"fanout_broker_server",
                   "fanout_broker_server --config FILE [flags]\n"
                   "The broker gRPC API with in-process event production, for bench/fanout_bench.sh.",
                   __FILE__});
  // As broker_main.cc does: no lock-order graph update on every Mutex
  // acquisition (Debian's absl build has it on by default).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ub::common::RealClock clock;
  auto config = ub::config::LoadConfig(absl::GetFlag(FLAGS_config));
  if (!config.ok()) {
    std::cerr << config.status() << std::endl;
    return 2;
  }
  auto creds = ub::credentials::CredentialProvider::Create(config->credentials, &clock);
  if (!creds.ok()) {
    std::cerr << creds.status() << std::endl;
    return 2;
  }
  // The engine the config names, as the broker opens it.
  auto ledger_or = ub::server::OpenLedger(*config, clock);
  if (!ledger_or.ok()) {
    std::cerr << ledger_or.status() << std::endl;
    return 2;
  }
  ub::ledger::Ledger& ledger = **ledger_or;

  const int64_t prefill = absl::GetFlag(FLAGS_prefill);
  const int64_t intents = absl::GetFlag(FLAGS_intents);
  auto t0 = std::chrono::steady_clock::now();
  RunConcurrently(0, prefill, 4096, [&](int64_t i, std::function<void(bool)> done) {
    CreateThenMaybeComplete(ledger, i, true, std::move(done));
  });
  auto t1 = std::chrono::steady_clock::now();
  RunConcurrently(prefill, prefill + intents, 4096, [&](int64_t i, std::function<void(bool)> done) {
    CreateThenMaybeComplete(ledger, i, false, std::move(done));
  });
  auto t2 = std::chrono::steady_clock::now();
  std::cerr << "setup: prefilled " << prefill << " events in "
            << std::chrono::duration<double>(t1 - t0).count() << " s; created " << intents
            << " intents in " << std::chrono::duration<double>(t2 - t1).count() << " s"
            << std::endl;

  // As in server.cc StartGrpc().
  ub::auth::Authenticator auth(config->callers);
  ub::issue::Issuer issuer(*config, **creds, ledger, clock);
  ub::ossapi::MultipartClient oss_multipart(**creds, clock);
  ub::issue::MultipartIssuer multipart(*config, **creds, ledger, oss_multipart, clock);
  auto streamer = std::make_unique<ub::stream::EventStreamer>(ledger);
  ub::rpc::UploadBrokerService service(auth, issuer, multipart, ledger, *streamer);
  grpc::ServerBuilder builder;
  uploadbroker::common::SetServerKeepalive(builder);  // as the broker's server does
  int port = 0;
  builder.AddListeningPort(config->grpc_listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 2;

  const double rate = absl::GetFlag(FLAGS_produce_rate);
  if (rate > 0) {
    std::thread([&ledger, rate, prefill, intents] {
      const auto start = std::chrono::steady_clock::now();
      int64_t made = 0;
      while (made < intents) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const int64_t due = std::min(intents, static_cast<int64_t>(elapsed * rate));
        for (; made < due; ++made) Complete(ledger, prefill + made, [](bool) {});
      }
      std::cerr << "producer: all " << intents << " intents completed" << std::endl;
    }).detach();
  }
  auto last = ledger.LastCursor();
  std::cout << "port=" << port << " last_cursor=" << (last.ok() ? *last : 0) << std::endl;
  server->Wait();
}
