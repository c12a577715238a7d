// Subscriber: follows a broker's Subscribe stream across disconnects.
//
// Run() opens the stream, hands every event to the application's handler in
// cursor order, and remembers the cursor of the last event the handler
// acknowledged (returned OK for). When the stream breaks it reconnects with
// exponential backoff (jittered, capped) and resumes with AFTER_CURSOR at
// that cursor, so the handler sees every event once, in order, with no gap —
// as long as it processes an event before acknowledging it. Before the
// first event arrives the resume point is the cursor the broker reported it
// started after (initial metadata `ub-start-cursor`), so a LATEST
// subscription does not skip events committed while it was reconnecting.
//
// Run() returns OK after Stop(); the status of a stream that failed with a
// code retrying cannot fix (UNAUTHENTICATED, PERMISSION_DENIED,
// INVALID_ARGUMENT, OUT_OF_RANGE); RESOURCE_EXHAUSTED when one event is
// larger than max_receive_message_bytes (see there); or the handler's error
// (that event is not acknowledged). Every other code (UNAVAILABLE when the
// broker drains or restarts, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED for too
// many streams of this caller, ...) is retried.
//
// Threads: Run() blocks its caller, and the handler and the callbacks run on
// that thread. Stop() and acked_cursor() may be called from any thread.
#ifndef UPLOADBROKER_CLIENT_SUBSCRIBER_H_
#define UPLOADBROKER_CLIENT_SUBSCRIBER_H_

#include <grpcpp/security/credentials.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "uploadbroker/v1/upload_broker.grpc.pb.h"

namespace uploadbroker::client {

class Subscriber {
 public:
  struct Options {
    std::string target;   // gRPC target, e.g. "localhost:50051"
    // client/channel.h (TLS, mutual TLS); null: plaintext.
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    std::string api_key;  // sent as `authorization: Bearer <key>`
    // Start and filter of the first connection. With
    // START_POSITION_AFTER_CURSOR, `after_cursor` counts as acknowledged.
    // max_events_per_message 0 means 256: a backlog arrives in fewer,
    // larger messages (the handler still gets one event at a time); set 1
    // for one event per message.
    v1::SubscribeRequest request;
    // Delay before reconnect attempt n (from 0): initial * multiplier^n,
    // capped at max, scaled by a random factor in [1 - jitter, 1 + jitter].
    // The attempt count restarts once a stream has been established.
    absl::Duration initial_backoff = absl::Milliseconds(200);
    absl::Duration max_backoff = absl::Seconds(30);
    double backoff_multiplier = 2.0;
    double jitter = 0.2;
    // Client keepalive pings on the stream (the broker accepts >= 10 s).
    absl::Duration keepalive = absl::Seconds(30);
    // Largest message this client accepts (0: gRPC's default, 4 MiB). The
    // broker's messages are at most 1 MiB (kBrokerMaxMessageBytes), one
    // event far less. When a message is over this limit the stream ends with
    // RESOURCE_EXHAUSTED; Run() then asks for one event per message and, if
    // the next event alone is still too large, returns RESOURCE_EXHAUSTED
    // naming the cursor instead of reconnecting at it forever.
    int max_receive_message_bytes = 0;
    // Optional: each established stream, with the cursor it starts after.
    std::function<void(uint64_t)> on_connected;
    // Optional: each retryable end of a stream, with the delay before the
    // next attempt.
    std::function<void(const absl::Status&, absl::Duration)> on_retry;
  };

  // Processes one event. OK acknowledges it; an error stops Run().
  using Handler = std::function<absl::Status(const v1::Event&)>;

  explicit Subscriber(Options options);
  ~Subscriber();

  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // See the file comment. Call at most once at a time.
  absl::Status Run(const Handler& handler);

  // Makes Run() return OK soon: cancels the current stream or backoff.
  void Stop();

  // The resume point: the last acknowledged cursor (or the broker-reported
  // start), if any yet.
  std::optional<uint64_t> acked_cursor() const;

 private:
  bool StopRequested() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; }

  const Options options_;
  std::unique_ptr<v1::UploadBroker::Stub> stub_;
  absl::BitGen rng_;  // Run's thread only

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;  // while a stream is open
  std::optional<uint64_t> acked_ ABSL_GUARDED_BY(mu_);
};

// The delay before reconnect attempt `attempt`, for a uniform `u` in [0, 1):
// common::Backoff with the options' initial, multiplier, max and jitter.
absl::Duration BackoffDelay(const Subscriber::Options& options, int attempt, double u);

// True for the codes Run() gives up on.
bool IsFinalSubscribeError(absl::StatusCode code);

// True when a stream ended because a message exceeded this client's
// receive limit (gRPC's RESOURCE_EXHAUSTED "Received message larger than
// max"), as opposed to the broker refusing the stream.
bool IsMessageTooLarge(const absl::Status& status);

// The largest SubscribeResponse the broker sends (stream::kMaxMessageBytes).
inline constexpr int kBrokerMaxMessageBytes = 1 << 20;

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_SUBSCRIBER_H_
