// Webhook push target benchmark (docs/benchmarks.md, "Webhooks"), in one
// process and one run, side by side:
//   (a) events/s delivered by the broker's webhook target (TargetDriver over
//       the SQLite ledger, batches off) to a local keep-alive receiver,
//       draining a backlog, vs a plain libcurl client (one easy handle,
//       keep-alive) POSTing the same bodies with the same headers to the same
//       receiver; alternating rounds, medians;
//   (b) commit -> receiver latency with events committed at --rate/s;
//   (c) idle cost: RSS and CPU of --idle_targets idle targets.
#include <curl/curl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/encoding.h"
#include "deliver/cloud_event.h"
#include "deliver/target_driver.h"
#include "deliver/webhook_target.h"
#include "http/server.h"
#include "ledger/sqlite_ledger.h"
#include "metrics/registry.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

ABSL_FLAG(int, events, 5000, "events per throughput round");
ABSL_FLAG(int, rounds, 3, "throughput rounds of each client");
ABSL_FLAG(int, rate, 1000, "events/s for the latency run");
ABSL_FLAG(int, latency_seconds, 5, "length of the latency run");
ABSL_FLAG(int, idle_targets, 1000, "targets for the idle-cost run (0 skips it)");
ABSL_FLAG(std::string, dir, "/tmp", "where the ledger files go");
ABSL_FLAG(int, max_in_flight, 1, "webhook.max_in_flight of the throughput targets");

namespace ub = uploadbroker;
using ub::deliver::CloudEvent;

namespace {

const std::string kSecret(32, 's');

// The receiver: answers 204 at once and notes when each event arrived.
class Receiver {
 public:
  Receiver() {
    ub::http::ServerOptions o;
    o.threads = 1;
    o.max_body_bytes = 1 << 20;
    o.idle_timeout = absl::Seconds(60);
    server_ = *ub::http::Server::Create(o, [this](ub::http::Request req, ub::http::Responder respond) {
      const absl::Time now = absl::Now();
      {
        absl::MutexLock lock(&mu_);
        arrived_.emplace(req.Header("webhook-id"), now);
        ++count_;
      }
      ub::http::Response r;
      r.status = 204;
      r.body = "";
      respond(std::move(r));
    });
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", server_->port(), "/hook"); }
  void Reset() {
    absl::MutexLock lock(&mu_);
    arrived_.clear();
    count_ = 0;
  }
  size_t distinct() {
    absl::MutexLock lock(&mu_);
    return arrived_.size();
  }
  bool WaitDistinct(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return arrived_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  std::map<std::string, absl::Time> arrived() {
    absl::MutexLock lock(&mu_);
    return arrived_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::Time> arrived_ ABSL_GUARDED_BY(mu_);
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<ub::http::Server> server_;
};

struct Bench {
  ub::common::RealClock clock;
  std::unique_ptr<ub::ledger::Ledger> ledger;
  Receiver rx;
  std::string secret_file;
  int next = 0;
  std::map<std::string, absl::Time> committed;  // webhook-id -> commit
  absl::Mutex mu;

  // Appends n completed uploads, `per_second` at a time (0: as fast as the
  // ledger takes them), noting when each commit was durable.
  void Append(int n, int per_second) {
    std::atomic<int> left{n};
    absl::Notification all;
    const absl::Time start = absl::Now();
    for (int i = 0; i < n; ++i) {
      if (per_second > 0) {
        absl::Time due = start + absl::Seconds(1) * i / per_second;
        absl::Duration wait = due - absl::Now();
        if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
      }
      const std::string id = absl::StrCat("bench-", getpid(), "-", next++);
      ub::ledger::Upload u;
      u.set_upload_id(id);
      u.set_caller("app");
      u.set_bucket("photos");
      u.set_key("users/" + id + "/avatar.png");
      u.set_max_size(1 << 20);
      (*u.mutable_metadata())["order"] = id;
      u.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(1)));
      ub::ledger::Ledger* l = ledger.get();
      l->CreateIntent(u, [this, l, id, &left, &all](absl::Status s) {
        if (!s.ok()) std::abort();
        ub::v1::Completion c;
        c.set_key("users/" + id + "/avatar.png");
        c.set_size(12345);
        c.set_etag("\"5EB63BBBE01EEED093CB22BB8F5ACDC3\"");
        c.set_content_type("image/png");
        l->CompleteUpload(id, c, [this, id, &left, &all](auto r) {
          if (!r.ok()) std::abort();
          {
            absl::MutexLock lock(&mu);
            committed[id + ".completed"] = absl::Now();
          }
          if (left.fetch_sub(1) == 1) all.Notify();
        });
      });
    }
    all.WaitForNotification();
  }

  ub::config::DeliveryTarget Target(const std::string& name) {
    ub::config::DeliveryTarget t;
    t.name = name;
    t.caller = "app";
    t.webhook.url = rx.url();
    t.webhook.secret_files = {secret_file};
    t.webhook.allow_private_addresses = true;
    return t;
  }
};

ub::stream::EventFilter AnyFilter() {
  ub::auth::Identity app;
  app.name = "app";
  app.scope.buckets = {"photos"};
  return *ub::stream::EventFilter::Create(ub::v1::EventFilter(), app);
}

// (a) broker: a backlog of n events after a fresh subscription, drained.
double DriverRound(Bench& b, const std::string& name, int n, int in_flight) {
  auto t = b.Target(name);
  t.webhook.max_in_flight = in_flight;
  ub::ledger::SubscriptionSpec spec;
  spec.key = ub::deliver::TargetSubscriptionKey(t);
  spec.start_after = *b.ledger->LastCursor();
  spec.ack_deadline = t.ack_deadline;
  spec.max_delivery_attempts = static_cast<int>(t.max_delivery_attempts);
  spec.target = t.name;
  absl::Notification created;
  b.ledger->CreateSubscription(spec, [&](auto r) {
    if (!r.ok()) {
      spdlog::error("CreateSubscription: {}", r.status().ToString());
      std::abort();
    }
    created.Notify();
  });
  created.WaitForNotification();
  b.Append(n, 0);
  b.rx.Reset();
  ub::deliver::WebhookClient client;
  ub::metrics::Registry metrics;
  std::vector<ub::deliver::TargetDriver::Driven> driven;
  driven.push_back({t, *ub::deliver::WebhookTarget::Create(t.webhook, true, "t", client, b.clock), AnyFilter()});
  const absl::Time start = absl::Now();
  ub::deliver::TargetDriver driver(*b.ledger, metrics, b.clock, "urn:bench", std::move(driven));
  if (!b.rx.WaitDistinct(n, absl::Seconds(120))) spdlog::error("driver round: only {} of {}", b.rx.distinct(), n);
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  driver.Shutdown();
  return n / secs;
}

// (a) baseline: the same bodies and headers, POSTed one after another on
// one kept-alive libcurl handle.
double CurlRound(Bench& b, const std::vector<CloudEvent>& events) {
  std::vector<std::pair<std::string, curl_slist*>> reqs;
  const std::vector<std::string> secrets = {kSecret};
  for (const CloudEvent& e : events) {
    std::string body = ub::deliver::StructuredJson(e);
    const int64_t ts = absl::ToUnixSeconds(absl::Now());
    curl_slist* h = nullptr;
    h = curl_slist_append(h, "Content-Type: application/cloudevents+json; charset=utf-8");
    h = curl_slist_append(h, ("webhook-id: " + e.id).c_str());
    h = curl_slist_append(h, absl::StrCat("webhook-timestamp: ", ts).c_str());
    h = curl_slist_append(h, ("webhook-signature: " + ub::deliver::SignWebhook(secrets, e.id, ts, body)).c_str());
    h = curl_slist_append(h, "Expect:");
    reqs.emplace_back(std::move(body), h);
  }
  b.rx.Reset();
  CURL* c = curl_easy_init();
  const std::string url = b.rx.url();
  const absl::Time start = absl::Now();
  for (auto& [body, h] : reqs) {
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
    if (curl_easy_perform(c) != CURLE_OK) std::abort();
  }
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  curl_easy_cleanup(c);
  for (auto& [body, h] : reqs) curl_slist_free_all(h);
  return events.size() / secs;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  Bench b;
  const std::string dir = absl::StrCat(absl::GetFlag(FLAGS_dir), "/webhook-bench-", getpid());
  std::system(("mkdir -p " + dir).c_str());
  b.secret_file = dir + "/whsec";
  std::ofstream(b.secret_file) << "whsec_" << ub::common::Base64Encode(kSecret) << "\n";
  ub::ledger::SqliteLedger::Options lo;
  lo.path = dir + "/ledger.db";
  lo.clock = &b.clock;
  b.ledger = *ub::ledger::SqliteLedger::Create(lo);

  const int n = absl::GetFlag(FLAGS_events);
  // The baseline's bodies: the CloudEvents of real log events.
  b.Append(n, 0);
  std::vector<CloudEvent> events;
  const std::vector<ub::v1::Event> logged = *b.ledger->ReadEvents(0, n);
  for (const auto& e : logged) events.push_back(*ub::deliver::ToCloudEvent(e, "urn:bench"));

  std::vector<double> curl_rates, driver_rates, parallel_rates;
  const int in_flight = absl::GetFlag(FLAGS_max_in_flight);
  for (int r = 0; r < absl::GetFlag(FLAGS_rounds); ++r) {
    curl_rates.push_back(CurlRound(b, events));
    driver_rates.push_back(DriverRound(b, absl::StrCat("tput", r), n, 1));
    if (in_flight > 1) parallel_rates.push_back(DriverRound(b, absl::StrCat("par", r), n, in_flight));
    std::printf("round %d: plain libcurl %.0f events/s, webhook target %.0f events/s (%.2fx)", r + 1,
                curl_rates.back(), driver_rates.back(), driver_rates.back() / curl_rates.back());
    if (in_flight > 1) {
      std::printf(", with max_in_flight %d %.0f events/s (%.2fx)", in_flight, parallel_rates.back(),
                  parallel_rates.back() / curl_rates.back());
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf("throughput (median of %zu): plain libcurl %.0f events/s, webhook target %.0f events/s, ratio %.2fx\n",
              curl_rates.size(), Median(curl_rates), Median(driver_rates), Median(driver_rates) / Median(curl_rates));
  if (in_flight > 1) {
    std::printf("  with max_in_flight %d: %.0f events/s, ratio %.2fx\n", in_flight, Median(parallel_rates),
                Median(parallel_rates) / Median(curl_rates));
  }

  // (b) latency at --rate events/s.
  {
    const auto t = b.Target("latency");
    ub::deliver::WebhookClient client;
    ub::metrics::Registry metrics;
    std::vector<ub::deliver::TargetDriver::Driven> driven;
    driven.push_back({t, *ub::deliver::WebhookTarget::Create(t.webhook, true, "t", client, b.clock), AnyFilter()});
    ub::deliver::TargetDriver driver(*b.ledger, metrics, b.clock, "urn:bench", std::move(driven));
    absl::SleepFor(absl::Milliseconds(500));  // subscription created, target claimed
    b.rx.Reset();
    {
      absl::MutexLock lock(&b.mu);
      b.committed.clear();
    }
    const int rate = absl::GetFlag(FLAGS_rate);
    const int total = rate * absl::GetFlag(FLAGS_latency_seconds);
    b.Append(total, rate);
    b.rx.WaitDistinct(total, absl::Seconds(30));
    std::vector<double> ms;
    auto arrived = b.rx.arrived();
    absl::MutexLock lock(&b.mu);
    for (const auto& [id, at] : arrived) {
      auto c = b.committed.find(id);
      if (c != b.committed.end()) ms.push_back(absl::ToDoubleMilliseconds(at - c->second));
    }
    std::sort(ms.begin(), ms.end());
    if (!ms.empty()) {
      std::printf("latency at %d events/s (%zu of %d events): commit -> receiver p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
                  rate, ms.size(), total, ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.back());
    }
    driver.Shutdown();
  }

  // (c) idle cost.
  if (const int idle = absl::GetFlag(FLAGS_idle_targets); idle > 0) {
    ub::deliver::WebhookClient client;
    ub::metrics::Registry metrics;
    const long rss0 = RssKb();
    std::vector<ub::deliver::TargetDriver::Driven> driven;
    for (int i = 0; i < idle; ++i) {
      auto t = b.Target(absl::StrCat("idle", i));
      t.caller = absl::StrCat("idle-owner-", i / 500);  // the ledger keeps 1,000 per caller
      driven.push_back({t, *ub::deliver::WebhookTarget::Create(t.webhook, true, "t", client, b.clock), AnyFilter()});
    }
    ub::deliver::TargetDriver driver(*b.ledger, metrics, b.clock, "urn:bench", std::move(driven));
    absl::SleepFor(absl::Seconds(5));  // created and claimed
    const double cpu0 = CpuSeconds();
    const long rss1 = RssKb();
    absl::SleepFor(absl::Seconds(10));
    const double cpu = CpuSeconds() - cpu0;
    std::printf("idle: %d targets: RSS +%.1f MiB (%.1f KiB per target), CPU %.1f%% of one core "
                "(over 10 s; lease renewals every 3 s each)\n",
                idle, (rss1 - rss0) / 1024.0, static_cast<double>(rss1 - rss0) / idle, cpu / 10 * 100);
    driver.Shutdown();
  }
  b.ledger.reset();
  std::system(("rm -rf " + dir).c_str());
  return 0;
}
