// fanout_bench: the Subscribe load driver for bench/fanout_bench.sh. Opens
// --subscribers streams (callback client API) spread over --channels HTTP/2
// connections and measures, for every event received, the latency from the
// event's committed_at (broker: set by the ledger at commit; bare server: set
// when generated) to receipt, plus deliveries/s. It drives the broker
// (bench/fanout_broker_server) and the bare server (bench/fanout_bare_server)
// identically; both produce events themselves.
//
// Modes:
//   live (default): wait until every stream is open, skip --warmup-s, then
//     measure --duration-s; prints deliveries/s and latency percentiles.
//   --until-cursor C: one stream (usually --start=earliest) reads until it
//     receives cursor C; prints events/s from the call start.
//   --hold-s S: open every stream, print "connected", keep them open S s
//     (idle streams, for the RSS measurement), then exit.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/cli.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address");
ABSL_FLAG(std::string, api_key, "bench-key", "Bearer API key");
ABSL_FLAG(std::string, label, "", "Name printed with the results");
ABSL_FLAG(int, subscribers, 10, "Streams to open");
ABSL_FLAG(int, channels, 4, "Channels (HTTP/2 connections) the streams are spread over");
ABSL_FLAG(std::string, start, "latest", "latest or earliest");
ABSL_FLAG(double, warmup_s, 2, "Seconds to skip after all streams are open");
ABSL_FLAG(double, duration_s, 5, "Measured seconds");
ABSL_FLAG(uint64_t, until_cursor, 0, "Replay mode: stop at this cursor");
ABSL_FLAG(double, hold_s, 0, "Idle mode: keep the streams open this long");
ABSL_FLAG(uint32_t, events_per_message, 1,
          "SubscribeRequest.max_events_per_message (1: one event per message)");

namespace v1 = uploadbroker::v1;

namespace {

constexpr int64_t kBucketNs = 10'000;      // 10 µs resolution
constexpr int64_t kBuckets = 1'000'000;    // up to 10 s

struct Stats {
  std::atomic<int> opened{0};
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  std::atomic<int64_t> window_start{INT64_MAX};
  std::atomic<int64_t> window_end{INT64_MAX};
  std::atomic<int64_t> in_window{0};
  std::atomic<int64_t> total{0};
  std::unique_ptr<std::atomic<int64_t>[]> hist{new std::atomic<int64_t>[kBuckets]()};
  uint64_t until = 0;
  std::atomic<int64_t> reached_ns{0};

  void Record(int64_t now, int64_t latency) {
    total.fetch_add(1, std::memory_order_relaxed);
    if (now < window_start.load(std::memory_order_relaxed) ||
        now >= window_end.load(std::memory_order_relaxed)) {
      return;
    }
    in_window.fetch_add(1, std::memory_order_relaxed);
    int64_t b = std::clamp<int64_t>(latency / kBucketNs, 0, kBuckets - 1);
    hist[b].fetch_add(1, std::memory_order_relaxed);
  }

  double PercentileMs(double p) const {
    int64_t n = 0;
    for (int64_t i = 0; i < kBuckets; ++i) n += hist[i].load();
    if (n == 0) return 0;
    const auto rank = static_cast<int64_t>(p * static_cast<double>(n - 1)) + 1;
    int64_t seen = 0;
    for (int64_t i = 0; i < kBuckets; ++i) {
      seen += hist[i].load();
      if (seen >= rank) return static_cast<double>((i + 1) * kBucketNs) / 1e6;
    }
    return 0;
  }
};

class Subscriber final : public grpc::ClientReadReactor<v1::SubscribeResponse> {
 public:
  Subscriber(v1::UploadBroker::Stub* stub, const v1::SubscribeRequest& req, Stats& stats)
      : stats_(stats) {
    ctx_.AddMetadata("authorization", "Bearer " + absl::GetFlag(FLAGS_api_key));
    stub->async()->Subscribe(&ctx_, &req, this);
    StartRead(&resp_);
    StartCall();
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) stats_.opened++;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    const int64_t now = absl::GetCurrentTimeNanos();
    bool reached = false;
    auto record = [&](const v1::Event& event) {
      const auto& ts = event.committed_at();
      const int64_t sent = ts.seconds() * 1'000'000'000 + ts.nanos();
      stats_.Record(now, now - sent);
      if (stats_.until != 0 && event.cursor() >= stats_.until) reached = true;
    };
    if (resp_.has_event()) record(resp_.event());
    for (const v1::Event& event : resp_.events()) record(event);
    if (reached) {
      int64_t zero = 0;
      stats_.reached_ns.compare_exchange_strong(zero, now);
      return;  // stop reading
    }
    StartRead(&resp_);
  }

  void OnDone(const grpc::Status& st) override {
    if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED) {
      if (stats_.failed++ < 3) {
        std::fprintf(stderr, "stream ended: %d %s\n", st.error_code(), st.error_message().c_str());
      }
    }
    stats_.done++;
  }

  void Cancel() { ctx_.TryCancel(); }

 private:
  Stats& stats_;
  grpc::ClientContext ctx_;
  v1::SubscribeResponse resp_;
};

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  uploadbroker::runtime::ParseCommandLine(
      argc, argv, {"fanout_bench",
                   "fanout_bench [flags]\n"
                   "The Subscribe load driver of bench/fanout_bench.sh.",
                   __FILE__});
  const int n = absl::GetFlag(FLAGS_subscribers);
  const int nch = std::max(1, std::min(n, absl::GetFlag(FLAGS_channels)));
  const std::string label = absl::GetFlag(FLAGS_label);
  Stats stats;
  stats.until = absl::GetFlag(FLAGS_until_cursor);

  std::vector<std::unique_ptr<v1::UploadBroker::Stub>> stubs;
  for (int i = 0; i < nch; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    args.SetInt("ub.bench.channel", i);
    args.SetMaxReceiveMessageSize(-1);
    stubs.push_back(v1::UploadBroker::NewStub(grpc::CreateCustomChannel(
        absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(), args)));
  }
  v1::SubscribeRequest req;
  req.set_start(absl::GetFlag(FLAGS_start) == "earliest" ? v1::START_POSITION_EARLIEST
                                                         : v1::START_POSITION_LATEST);
  req.set_max_events_per_message(absl::GetFlag(FLAGS_events_per_message));

  const auto call_start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Subscriber>> subs;
  subs.reserve(n);
  for (int i = 0; i < n; ++i) {
    subs.push_back(std::make_unique<Subscriber>(stubs[i % nch].get(), req, stats));
  }
  const auto open_deadline = call_start + std::chrono::seconds(60);
  while (stats.opened < n && stats.done == 0 &&
         std::chrono::steady_clock::now() < open_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (stats.opened < n) {
    std::fprintf(stderr, "%s: only %d of %d streams opened\n", label.c_str(), stats.opened.load(), n);
    std::_Exit(1);
  }
  const double open_s = Seconds(std::chrono::steady_clock::now() - call_start);

  if (absl::GetFlag(FLAGS_hold_s) > 0) {
    std::printf("connected %d streams in %.2f s\n", n, open_s);
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(absl::GetFlag(FLAGS_hold_s)));
    std::_Exit(stats.done > 0 ? 1 : 0);
  }

  if (stats.until != 0) {
    stats.window_start = 0;  // count everything
    while (stats.reached_ns == 0 && stats.done == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const double s = Seconds(std::chrono::steady_clock::now() - call_start);
    std::printf("%-8s replay: %lld events to cursor %llu in %.2f s = %.0f events/s\n",
                label.c_str(), static_cast<long long>(stats.total.load()),
                static_cast<unsigned long long>(stats.until), s,
                static_cast<double>(stats.total.load()) / s);
    std::fflush(stdout);
    std::_Exit(stats.reached_ns == 0 ? 1 : 0);
  }

  const double warmup = absl::GetFlag(FLAGS_warmup_s);
  const double duration = absl::GetFlag(FLAGS_duration_s);
  const int64_t now = absl::GetCurrentTimeNanos();
  stats.window_end = now + static_cast<int64_t>((warmup + duration) * 1e9);
  stats.window_start = now + static_cast<int64_t>(warmup * 1e9);
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup + duration + 0.05));
  for (auto& s : subs) s->Cancel();
  const int64_t got = stats.in_window.load();
  std::printf("%-8s subs=%d deliveries/s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f events=%lld open_s=%.2f failed=%d received=%lld\n",
              label.c_str(), n, static_cast<double>(got) / duration, stats.PercentileMs(0.5),
              stats.PercentileMs(0.99), stats.PercentileMs(1.0), static_cast<long long>(got), open_s,
              stats.failed.load(), static_cast<long long>(stats.total.load()));
  std::fflush(stdout);
  std::_Exit(stats.failed > 0 ? 1 : 0);
}
