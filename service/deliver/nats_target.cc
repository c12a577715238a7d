#include "deliver/nats_target.h"

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/log_safe.h"
#include "common/url.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::deliver {
namespace {

// A subject or stream name longer than this is surely a mistake.
constexpr size_t kMaxNameBytes = 255;
// How long the first connect (and each reconnect) may take, at most.
constexpr int64_t kConnectTimeoutMs = 2000;

// CloudEvents HTTP binding, header values: percent-encode space, '"', '%'
// and every byte outside printable ASCII. Keeps CR/LF out of the header block.
std::string HeaderValue(absl::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c <= 0x20 || c >= 0x7F || c == '"' || c == '%') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

absl::Status CheckUrl(absl::string_view list) {
  if (list.empty()) return absl::InvalidArgumentError("url: required (nats://host:port)");
  int n = 0;
  for (absl::string_view one : absl::StrSplit(list, ',')) {
    ++n;
    one = absl::StripAsciiWhitespace(one);
    const std::string which = absl::StrCat("url (server ", n, ")");
    if (absl::StartsWithIgnoreCase(one, "tls://")) {
      return absl::InvalidArgumentError(absl::StrCat(
          which, ": tls:// is not supported by the NATS target yet (nats:// only)"));
    }
    if (!absl::StartsWithIgnoreCase(one, "nats://")) {
      return absl::InvalidArgumentError(absl::StrCat(which, ": must start with nats://"));
    }
    // libcurl's URL API takes the rest apart the way it would for http.
    absl::StatusOr<common::Url> url =
        common::ParseUrl(absl::StrCat("http://", one.substr(7)), common::DotSegments::kKeep);
    if (!url.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(which, ": not a valid nats:// URL (host, optional port)"));
    }
    if (url->host.empty()) return absl::InvalidArgumentError(absl::StrCat(which, ": no host"));
    if (url->path != "/" || !url->query.empty() || absl::StrContains(one, '#')) {
      return absl::InvalidArgumentError(
          absl::StrCat(which, ": a NATS URL has no path, query or fragment"));
    }
  }
  return absl::OkStatus();
}

// NATS subjects: dot-separated, non-empty tokens of printable ASCII without
// spaces; publishing takes no wildcard token.
absl::Status CheckSubject(absl::string_view subject) {
  if (subject.empty()) return absl::InvalidArgumentError("subject: required");
  if (subject.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("subject: longer than ", kMaxNameBytes, " bytes"));
  }
  for (unsigned char c : subject) {
    if (c <= 0x20 || c >= 0x7F) {
      return absl::InvalidArgumentError(
          "subject: only printable ASCII without spaces (tokens separated by '.')");
    }
  }
  for (absl::string_view token : absl::StrSplit(subject, '.')) {
    if (token.empty()) return absl::InvalidArgumentError("subject: empty token (\"..\" or a '.' at an end)");
    if (token == "*" || token == ">") {
      return absl::InvalidArgumentError("subject: wildcards ('*', '>') cannot be published to");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckStream(absl::string_view stream) {
  if (stream.empty()) return absl::OkStatus();
  if (stream.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("stream: longer than ", kMaxNameBytes, " bytes"));
  }
  for (unsigned char c : stream) {
    if (c <= 0x20 || c >= 0x7F || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\') {
      return absl::InvalidArgumentError(
          "stream: a JetStream stream name (printable ASCII, no spaces, '.', '*', '>', '/', '\\')");
    }
  }
  return absl::OkStatus();
}

}  // namespace

struct NatsTarget::Core {
  struct Job {
    std::vector<CloudEvent> events;
    std::function<void(AttemptOutcome)> done;
  };
  // One Deliver call: done once every message of it is settled.
  struct Attempt {
    size_t remaining = 0;
    std::string failure;  // the first failure's reason
    std::function<void(AttemptOutcome)> done;
  };

  explicit Core(NatsTargetOptions o) : options(std::move(o)) {}

  const NatsTargetOptions options;
  uint64_t id = 0;  // the closure nats.c hands back (see Registry)
  std::thread thread;
  std::atomic<natsConnection*> nc{nullptr};  // written by the thread only
  jsCtx* js = nullptr;                       // the thread's, once connected
  std::string connect_error;                 // the thread's

  absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::deque<Job> queue ABSL_GUARDED_BY(mu);
  // Messages handed to nats.c, by address (unique while nats.c holds them).
  absl::flat_hash_map<natsMsg*, std::shared_ptr<Attempt>> inflight ABSL_GUARDED_BY(mu);
  int running_done ABSL_GUARDED_BY(mu) = 0;

  void Run();
  void Connect();
  void Publish(Job job);
  // Settles `count` messages of `attempt` (`failure` empty: delivered) and
  // runs its `done` when none is left, outside the lock.
  void Settle(const std::shared_ptr<Attempt>& attempt, size_t count, std::string failure);
  // A message nats.c answered for (or that failed to go out).
  void SettleMessage(natsMsg* msg, std::string failure);
  std::string Reason(const jsPubAckErr& pae) const;
};

namespace {

// nats.c's callbacks carry a number, not a pointer: a callback that runs
// after its target is gone finds nothing here.
class Registry {
 public:
  static Registry& Get() {
    static Registry* r = new Registry;
    return *r;
  }
  uint64_t Add(std::shared_ptr<NatsTarget::Core> core) {
    absl::MutexLock l(&mu_);
    uint64_t id = ++next_;
    cores_[id] = std::move(core);
    return id;
  }
  void Remove(uint64_t id) {
    std::shared_ptr<NatsTarget::Core> gone;
    absl::MutexLock l(&mu_);
    auto it = cores_.find(id);
    if (it == cores_.end()) return;
    gone = std::move(it->second);
    cores_.erase(it);
  }
  std::shared_ptr<NatsTarget::Core> Find(void* closure) {
    absl::MutexLock l(&mu_);
    auto it = cores_.find(reinterpret_cast<uintptr_t>(closure));
    return it == cores_.end() ? nullptr : it->second;
  }

 private:
  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, std::shared_ptr<NatsTarget::Core>> cores_ ABSL_GUARDED_BY(mu_);
};

void OnPubAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  if (std::shared_ptr<NatsTarget::Core> core = Registry::Get().Find(closure)) {
    std::string failure;
    if (pa == nullptr) {
      failure = pae != nullptr ? core->Reason(*pae) : "no JetStream ack";
    }
    core->SettleMessage(msg, std::move(failure));
  }
  natsMsg_Destroy(msg);
}

void OnDisconnected(natsConnection*, void* closure) {
  if (auto core = Registry::Get().Find(closure)) {
    spdlog::warn("deliveries: NATS target {}: disconnected; reconnecting in the background",
                 common::LogSafe(core->options.name));
  }
}

void OnReconnected(natsConnection*, void* closure) {
  if (auto core = Registry::Get().Find(closure)) {
    spdlog::info("deliveries: NATS target {}: connected", common::LogSafe(core->options.name));
  }
}

void OnAsyncError(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
  if (auto core = Registry::Get().Find(closure)) {
    spdlog::warn("deliveries: NATS target {}: {}", common::LogSafe(core->options.name),
                 natsStatus_GetText(err));
  }
}

}  // namespace

std::string NatsTarget::Core::Reason(const jsPubAckErr& pae) const {
  if (pae.Err == NATS_TIMEOUT) {
    return absl::StrCat("no JetStream ack within ", absl::FormatDuration(options.timeout));
  }
  if (pae.Err == NATS_NO_RESPONDERS) {
    return absl::StrCat("no JetStream stream captures subject ", options.subject,
                        " (no responders)");
  }
  if (pae.ErrCode != 0) {
    return absl::StrCat("JetStream error ", static_cast<int>(pae.ErrCode), ": ",
                        common::LogSafe(pae.ErrText != nullptr ? pae.ErrText : "", 160));
  }
  return absl::StrCat("publish failed: ", natsStatus_GetText(pae.Err));
}

void NatsTarget::Core::Settle(const std::shared_ptr<Attempt>& attempt, size_t count,
                              std::string failure) {
  std::function<void(AttemptOutcome)> done;
  AttemptOutcome outcome;
  {
    absl::MutexLock l(&mu);
    if (!failure.empty() && attempt->failure.empty()) attempt->failure = std::move(failure);
    attempt->remaining -= std::min(count, attempt->remaining);
    if (attempt->remaining > 0 || stopping || !attempt->done) return;
    done = std::move(attempt->done);
    attempt->done = nullptr;
    outcome.kind = attempt->failure.empty() ? AttemptOutcome::kDelivered : AttemptOutcome::kFailed;
    outcome.reason = attempt->failure;
    ++running_done;
  }
  done(std::move(outcome));
  absl::MutexLock l(&mu);
  --running_done;
}

void NatsTarget::Core::SettleMessage(natsMsg* msg, std::string failure) {
  std::shared_ptr<Attempt> attempt;
  {
    absl::MutexLock l(&mu);
    auto it = inflight.find(msg);
    if (it == inflight.end()) return;  // cancelled by the destructor
    attempt = std::move(it->second);
    inflight.erase(it);
  }
  Settle(attempt, 1, std::move(failure));
}

void NatsTarget::Core::Connect() {
  natsOptions* opts = nullptr;
  void* closure = reinterpret_cast<void*>(static_cast<uintptr_t>(id));
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, options.url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, ("upload-broker " + options.name).c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, kConnectTimeoutMs);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);  // forever
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 500);
  // A dead server behind a live TCP connection is noticed within ~30 s.
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts, 10000);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts, 2);
  if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(opts, true, OnReconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, OnDisconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, OnReconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts, OnAsyncError, closure);
  natsConnection* conn = nullptr;
  if (s == NATS_OK) {
    s = natsConnection_Connect(&conn, opts);
    // Not yet connected: nats.c keeps trying in the background.
    if (s == NATS_NOT_YET_CONNECTED) s = NATS_OK;
  }
  if (s == NATS_OK) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = absl::ToInt64Milliseconds(options.timeout);
    jo.PublishAsync.MaxPending = 2 * static_cast<int64_t>(options.max_in_flight) + 16;
    jo.PublishAsync.AckHandler = OnPubAck;
    jo.PublishAsync.AckHandlerClosure = closure;
    s = natsConnection_JetStream(&js, conn, &jo);
  }
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    if (conn != nullptr) natsConnection_Destroy(conn);
    js = nullptr;
    connect_error = absl::StrCat("cannot set up the NATS client: ", natsStatus_GetText(s));
    spdlog::error("deliveries: NATS target {}: {}", common::LogSafe(options.name), connect_error);
    return;
  }
  connect_error.clear();
  nc.store(conn);
}

void NatsTarget::Core::Run() {
  Connect();
  for (;;) {
    std::deque<Job> jobs;
    {
      absl::MutexLock l(&mu);
      // Without a client, try to set one up again once a second.
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return stopping || !queue.empty(); };
      if (nc.load() == nullptr) {
        mu.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(1));
      } else {
        mu.Await(absl::Condition(&ready));
      }
      if (stopping) return;
      jobs.swap(queue);
    }
    if (nc.load() == nullptr) Connect();
    for (Job& job : jobs) Publish(std::move(job));
  }
}

void NatsTarget::Core::Publish(Job job) {
  auto attempt = std::make_shared<Attempt>();
  attempt->remaining = job.events.size();
  attempt->done = std::move(job.done);
  natsConnection* conn = nc.load();
  if (conn == nullptr) {
    Settle(attempt, job.events.size(),
           connect_error.empty() ? "not connected to NATS" : connect_error);
    return;
  }
  if (natsConnection_Status(conn) != NATS_CONN_STATUS_CONNECTED) {
    Settle(attempt, job.events.size(), "not connected to NATS (reconnecting)");
    return;
  }
  if (job.events.empty()) {
    Settle(attempt, 0, "");
    return;
  }
  for (size_t i = 0; i < job.events.size(); ++i) {
    const CloudEvent& e = job.events[i];
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, options.subject.c_str(), nullptr, e.data.data(),
                                  static_cast<int>(e.data.size()));
    const std::pair<const char*, std::string> headers[] = {
        {"ce-specversion", "1.0"},
        {"ce-id", HeaderValue(e.id)},
        {"ce-source", HeaderValue(e.source)},
        {"ce-type", HeaderValue(e.type)},
        {"ce-subject", HeaderValue(e.subject)},
        {"ce-time", Rfc3339(e.time)},
        {"ce-sequence", absl::StrCat(e.sequence)},
        {"content-type", HeaderValue(e.datacontenttype)},
    };
    for (const auto& [key, value] : headers) {
      if (s == NATS_OK) s = natsMsgHeader_Set(msg, key, value.c_str());
    }
    const std::string msg_id = HeaderValue(e.id);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id.c_str();  // the Nats-Msg-Id header
    po.MaxWait = absl::ToInt64Milliseconds(options.timeout);
    if (!options.stream.empty()) po.ExpectStream = options.stream.c_str();
    if (s == NATS_OK) {
      absl::MutexLock l(&mu);
      if (stopping) {
        natsMsg_Destroy(msg);
        return;
      }
      inflight[msg] = attempt;
    }
    if (s == NATS_OK) {
      natsMsg* handed = msg;
      s = js_PublishMsgAsync(js, &handed, &po);
      if (s == NATS_OK) continue;  // nats.c owns it; OnPubAck settles it
      absl::MutexLock l(&mu);
      inflight.erase(msg);
    }
    natsMsg_Destroy(msg);
    // This one and those not sent yet fail.
    Settle(attempt, job.events.size() - i,
           s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED
               ? "not connected to NATS (reconnecting)"
               : absl::StrCat("publish failed: ", natsStatus_GetText(s)));
    return;
  }
}

absl::Status NatsTarget::Validate(const NatsTargetOptions& options) {
  if (absl::Status s = CheckUrl(options.url); !s.ok()) return s;
  if (absl::Status s = CheckSubject(options.subject); !s.ok()) return s;
  if (absl::Status s = CheckStream(options.stream); !s.ok()) return s;
  if (options.timeout <= absl::ZeroDuration() || options.timeout > absl::Hours(1)) {
    return absl::InvalidArgumentError("timeout: must be between 1ms and 1h");
  }
  if (options.max_in_flight < 1 || options.max_in_flight > 100000) {
    return absl::InvalidArgumentError("max_in_flight: must be between 1 and 100000");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<NatsTarget>> NatsTarget::Create(NatsTargetOptions options) {
  if (absl::Status s = Validate(options); !s.ok()) return s;
  auto core = std::make_shared<Core>(std::move(options));
  core->id = Registry::Get().Add(core);
  core->thread = std::thread([c = core.get()] { c->Run(); });
  return std::unique_ptr<NatsTarget>(new NatsTarget(std::move(core)));
}

NatsTarget::NatsTarget(std::shared_ptr<Core> core) : core_(std::move(core)) {}

NatsTarget::~NatsTarget() {
  std::deque<Core::Job> queued;
  absl::flat_hash_map<natsMsg*, std::shared_ptr<Core::Attempt>> inflight;
  {
    absl::MutexLock l(&core_->mu);
    core_->stopping = true;
    queued.swap(core_->queue);
    inflight.swap(core_->inflight);
    core_->mu.Await(absl::Condition(
        +[](int* running) { return *running == 0; }, &core_->running_done));
  }
  core_->thread.join();
  // From here nats.c's callbacks find no target.
  Registry::Get().Remove(core_->id);
  if (core_->js != nullptr) jsCtx_Destroy(core_->js);
  if (natsConnection* conn = core_->nc.load()) natsConnection_Destroy(conn);
}

int NatsTarget::max_in_flight() const { return core_->options.max_in_flight; }

void NatsTarget::Deliver(std::vector<CloudEvent> events,
                         std::function<void(AttemptOutcome)> done) {
  absl::MutexLock l(&core_->mu);
  core_->queue.push_back(Core::Job{std::move(events), std::move(done)});
}

bool NatsTarget::connected() const {
  natsConnection* conn = core_->nc.load();
  return conn != nullptr && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED;
}

}  // namespace uploadbroker::deliver
