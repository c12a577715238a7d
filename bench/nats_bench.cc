// JetStream publishing, side by side in one run: events/s through
// deliver::NatsTarget (driven the way the target driver drives a Target:
// at most max_in_flight attempts outstanding, the next one started from
// `done`) against a minimal nats.c publisher that waits for the same acks
// (js_PublishMsgAsync with the same headers and Nats-Msg-Id, at most the
// same number of PubAcks outstanding).
//
// Starts its own `nats-server -js` on loopback (file-backed stream, 2 min
// duplicate window) and alternates the two publishers ROUNDS times, each
// publishing EVENTS new events; prints each run and the medians.
//
//   nats_bench [--events 50000] [--window 256] [--rounds 3] [--payload 300]
#include <nats/nats.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "deliver/nats_target.h"
#include "runtime/cli.h"
#include "tests/testing/nats_server.h"

ABSL_FLAG(int, events, 50000, "events per run");
ABSL_FLAG(int, window, 256, "attempts (PubAcks) outstanding at most");
ABSL_FLAG(int, rounds, 3, "runs of each publisher, alternating");
ABSL_FLAG(int, payload, 300, "bytes of event data (JSON)");

namespace {

using uploadbroker::deliver::AttemptOutcome;
using uploadbroker::deliver::CloudEvent;

constexpr char kSubject[] = "bench.events";

CloudEvent Event(const std::string& run, int i, int payload) {
  CloudEvent e;
  e.id = absl::StrCat(run, "-", i, ".completed");
  e.source = "urn:upload-broker";
  e.type = "com.uploadbroker.upload.completed";
  e.subject = absl::StrCat("uploads/bench/", i, ".jpg");
  e.time = absl::Now();
  e.sequence = static_cast<uint64_t>(i) + 1;
  e.data = absl::StrCat(R"({"x":")", std::string(std::max(0, payload - 8), 'x'), R"("})");
  return e;
}

// Counts settled attempts; lets the producer wait for room in the window.
struct Window {
  absl::Mutex mu;
  int outstanding = 0;
  int limit = 1;
  int ok = 0;
  int failed = 0;
  std::string first_failure;

  void Done(bool delivered, const std::string& reason) {
    absl::MutexLock l(&mu);
    --outstanding;
    if (delivered) {
      ++ok;
    } else if (failed++ == 0) {
      first_failure = reason;
    }
  }
  void Acquire(int window) {
    absl::MutexLock l(&mu);
    limit = window;
    mu.Await(absl::Condition(this, &Window::HasRoom));
    ++outstanding;
  }
  bool HasRoom() const { return outstanding < limit; }
  void Drain() {
    absl::MutexLock l(&mu);
    mu.Await(absl::Condition(+[](int* n) { return *n == 0; }, &outstanding));
  }
};

struct Result {
  double events_per_s = 0;
  int failed = 0;
  std::string first_failure;
};

Result RunTarget(const std::string& url, const std::string& run, int events, int window, int payload) {
  uploadbroker::deliver::NatsTargetOptions o;
  o.url = url;
  o.subject = kSubject;
  o.max_in_flight = window;
  o.name = "bench";
  auto target = uploadbroker::deliver::NatsTarget::Create(o);
  if (!target.ok()) {
    std::fprintf(stderr, "NatsTarget: %s\n", target.status().ToString().c_str());
    std::exit(1);
  }
  // Let it connect (it connects on its own thread).
  for (int i = 0; i < 500 && !(*target)->connected(); ++i) absl::SleepFor(absl::Milliseconds(10));
  std::vector<CloudEvent> prepared;
  prepared.reserve(events);
  for (int i = 0; i < events; ++i) prepared.push_back(Event(run, i, payload));
  Window w;
  const absl::Time start = absl::Now();
  for (int i = 0; i < events; ++i) {
    w.Acquire(window);
    (*target)->Deliver({std::move(prepared[i])}, [&w](AttemptOutcome out) {
      w.Done(out.kind == AttemptOutcome::kDelivered, out.reason);
    });
  }
  w.Drain();
  const double s = absl::ToDoubleSeconds(absl::Now() - start);
  return Result{w.ok / s, w.failed, w.first_failure};
}

void BareAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  static_cast<Window*>(closure)->Done(pa != nullptr, pae != nullptr ? natsStatus_GetText(pae->Err) : "");
  natsMsg_Destroy(msg);
}

// The minimal publisher: one connection, async publish, count PubAcks.
Result RunBare(const std::string& url, const std::string& run, int events, int window, int payload) {
  Window w;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) std::exit(1);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.AckHandler = BareAck;
  jo.PublishAsync.AckHandlerClosure = &w;
  jo.PublishAsync.MaxPending = window + 16;
  if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) std::exit(1);
  std::vector<CloudEvent> prepared;
  prepared.reserve(events);
  for (int i = 0; i < events; ++i) prepared.push_back(Event(run, i, payload));
  const absl::Time start = absl::Now();
  for (int i = 0; i < events; ++i) {
    const CloudEvent& e = prepared[i];
    w.Acquire(window);
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, kSubject, nullptr, e.data.data(), static_cast<int>(e.data.size()));
    natsMsgHeader_Set(msg, "ce-specversion", "1.0");
    natsMsgHeader_Set(msg, "ce-id", e.id.c_str());
    natsMsgHeader_Set(msg, "ce-source", e.source.c_str());
    natsMsgHeader_Set(msg, "ce-type", e.type.c_str());
    natsMsgHeader_Set(msg, "ce-subject", e.subject.c_str());
    natsMsgHeader_Set(msg, "ce-time", absl::FormatTime(absl::RFC3339_full, e.time, absl::UTCTimeZone()).c_str());
    natsMsgHeader_Set(msg, "ce-sequence", absl::StrCat(e.sequence).c_str());
    natsMsgHeader_Set(msg, "content-type", "application/json");
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = e.id.c_str();
    po.MaxWait = 5000;
    if (js_PublishMsgAsync(js, &msg, &po) != NATS_OK) w.Done(false, "publish failed");
    natsMsg_Destroy(msg);
  }
  w.Drain();
  const double s = absl::ToDoubleSeconds(absl::Now() - start);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return Result{w.ok / s, w.failed, w.first_failure};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  uploadbroker::runtime::ParseCommandLine(
      argc, argv, {"nats_bench", "nats_bench [--events 50000] [--window 256] [--rounds 3] [--payload 300]\n"
                                 "NatsTarget vs a minimal nats.c JetStream publisher, events/s.",
                   __FILE__});
  const int events = absl::GetFlag(FLAGS_events), window = absl::GetFlag(FLAGS_window);
  const int payload = absl::GetFlag(FLAGS_payload);
  uploadbroker::testing::NatsServer server;
  if (absl::Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    natsConnection_ConnectTo(&nc, server.url().c_str());
    natsConnection_JetStream(&js, nc, nullptr);
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "BENCH";
    const char* subjects[] = {kSubject};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = absl::ToInt64Nanoseconds(absl::Minutes(2));
    if (js_AddStream(nullptr, js, &cfg, nullptr, nullptr) != NATS_OK) {
      std::fprintf(stderr, "cannot create the stream\n");
      return 1;
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
  std::printf("nats-server %s, file stream, %d events/run, window %d, payload %d B\n",
              server.url().c_str(), events, window, payload);
  std::vector<double> bare, target;
  for (int r = 0; r < absl::GetFlag(FLAGS_rounds); ++r) {
    for (bool use_target : {false, true}) {
      const std::string run = absl::StrCat(use_target ? "t" : "b", r);
      Result res = use_target ? RunTarget(server.url(), run, events, window, payload)
                              : RunBare(server.url(), run, events, window, payload);
      std::printf("round %d %-8s %9.0f events/s%s%s\n", r + 1, use_target ? "target" : "bare",
                  res.events_per_s, res.failed ? "  FAILED: " : "",
                  res.failed ? absl::StrCat(res.failed, " (", res.first_failure, ")").c_str() : "");
      (use_target ? target : bare).push_back(res.events_per_s);
    }
  }
  const double b = Median(bare), t = Median(target);
  std::printf("median   bare %9.0f events/s   target %9.0f events/s   target/bare %.2fx\n", b, t,
              b > 0 ? t / b : 0);
  return 0;
}
