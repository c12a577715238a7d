#include "client/subscriber.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/backoff.h"

namespace uploadbroker::client {
namespace {

// Must match stream::kStartCursorMetadata on the broker.
constexpr absl::string_view kStartCursorMetadata = "ub-start-cursor";
// Asked for unless the request says otherwise: a backlog arrives in fewer,
// larger messages; the handler still sees one event at a time.
constexpr uint32_t kEventsPerMessage = 256;

int Millis(absl::Duration d) {
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, INT32_MAX));
}

std::shared_ptr<grpc::Channel> MakeChannel(const Subscriber::Options& o) {
  grpc::ChannelArguments args;
  // Notice a dead broker on a quiet stream; keep pinging without data.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(o.keepalive));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // The channel's own reconnect backoff follows ours, so a restarted broker
  // is found as soon as our backoff says so.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, Millis(o.initial_backoff));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, Millis(o.initial_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, Millis(o.max_backoff));
  if (o.max_receive_message_bytes > 0) args.SetMaxReceiveMessageSize(o.max_receive_message_bytes);
  return grpc::CreateCustomChannel(
      o.target, o.credentials != nullptr ? o.credentials : grpc::InsecureChannelCredentials(), args);
}

absl::Status FromGrpc(const grpc::Status& st) {
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
}

}  // namespace

bool IsFinalSubscribeError(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

bool IsMessageTooLarge(const absl::Status& status) {
  return status.code() == absl::StatusCode::kResourceExhausted &&
         absl::StrContains(status.message(), "Received message larger than max");
}

absl::Duration BackoffDelay(const Subscriber::Options& o, int attempt, double u) {
  common::Backoff schedule;
  schedule.initial = o.initial_backoff;
  schedule.multiplier = o.backoff_multiplier;
  schedule.max = o.max_backoff;
  schedule.jitter = o.jitter;
  return schedule.Delay(attempt, u);
}

Subscriber::Subscriber(Options options)
    : options_(std::move(options)), stub_(v1::UploadBroker::NewStub(MakeChannel(options_))) {
  if (options_.request.start() == v1::START_POSITION_AFTER_CURSOR) {
    acked_ = options_.request.after_cursor();
  }
}

Subscriber::~Subscriber() = default;

std::optional<uint64_t> Subscriber::acked_cursor() const {
  absl::MutexLock lock(&mu_);
  return acked_;
}

void Subscriber::Stop() {
  absl::MutexLock lock(&mu_);
  stop_ = true;
  if (call_ != nullptr) call_->TryCancel();
}

absl::Status Subscriber::Run(const Handler& handler) {
  int attempt = 0;
  // After a message too large for this client: one event per message from
  // then on, and the resume point at which an event alone was too large.
  bool one_per_message = false;
  std::optional<std::optional<uint64_t>> too_large_at;
  for (;;) {
    grpc::ClientContext ctx;
    if (!options_.api_key.empty()) {
      ctx.AddMetadata("authorization", absl::StrCat("Bearer ", options_.api_key));
    }
    v1::SubscribeRequest request = options_.request;
    if (request.max_events_per_message() == 0) {
      request.set_max_events_per_message(kEventsPerMessage);
    }
    if (one_per_message) request.set_max_events_per_message(1);
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return absl::OkStatus();
      call_ = &ctx;
      if (acked_.has_value()) {
        request.set_start(v1::START_POSITION_AFTER_CURSOR);
        request.set_after_cursor(*acked_);
      }
    }
    std::unique_ptr<grpc::ClientReader<v1::SubscribeResponse>> reader =
        stub_->Subscribe(&ctx, request);
    reader->WaitForInitialMetadata();
    const auto& md = ctx.GetServerInitialMetadata();
    auto it = md.find(std::string(kStartCursorMetadata));
    uint64_t start = 0;
    const bool connected =
        it != md.end() &&
        absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &start);
    if (connected) {
      {
        absl::MutexLock lock(&mu_);
        if (!acked_.has_value()) acked_ = start;
      }
      attempt = 0;
      if (options_.on_connected) options_.on_connected(start);
    }
    absl::Status handler_status;
    v1::SubscribeResponse response;
    // One event per message (`event`), or several (`events`) when asked for.
    auto handle = [&](const v1::Event& event) {
      handler_status = handler(event);
      if (!handler_status.ok()) return false;
      absl::MutexLock lock(&mu_);
      acked_ = event.cursor();
      return true;
    };
    while (handler_status.ok() && reader->Read(&response)) {
      if (response.has_event()) handle(response.event());
      for (const v1::Event& event : response.events()) {
        if (!handler_status.ok() || !handle(event)) break;
      }
      if (!handler_status.ok()) ctx.TryCancel();
    }
    grpc::Status status = reader->Finish();
    {
      absl::MutexLock lock(&mu_);
      call_ = nullptr;
    }
    if (!handler_status.ok()) return handler_status;
    absl::Status ended = FromGrpc(status);
    if (IsFinalSubscribeError(ended.code())) return ended;
    if (IsMessageTooLarge(ended)) {
      const std::optional<uint64_t> at = acked_cursor();
      if (one_per_message && too_large_at == at) {
        // The next event alone does not fit: reconnecting cannot help.
        return absl::ResourceExhaustedError(absl::StrCat(
            "the event after cursor ", at.has_value() ? absl::StrCat(*at) : "(start)",
            " is larger than this client's receive limit (", ended.message(),
            "); the broker sends messages of at most ", kBrokerMaxMessageBytes,
            " bytes: raise the limit to that"));
      }
      one_per_message = true;
      too_large_at = at;
    }
    if (ended.ok()) {
      ended = absl::UnavailableError("the broker ended the stream");
    }
    absl::Duration delay =
        BackoffDelay(options_, attempt++, absl::Uniform<double>(rng_, 0.0, 1.0));
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return absl::OkStatus();
    }
    if (options_.on_retry) options_.on_retry(ended, delay);
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(this, &Subscriber::StopRequested), delay);
  }
}

}  // namespace uploadbroker::client
