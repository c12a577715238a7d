// NatsTarget: a push Target (target.h) that publishes each event to one
// NATS subject through JetStream, with the nats.c client (libnats).
//
// Message: body = the event's data (JSON); headers = CloudEvents binary mode
// (ce-specversion, ce-id, ce-source, ce-type, ce-subject, ce-time,
// ce-sequence, content-type) and Nats-Msg-Id = the CloudEvent id, so the
// stream's duplicate window drops a retry of an event it already stored.
// Header values are percent-encoded where CloudEvents' HTTP binding says so
// (space, '"', '%', and bytes outside printable ASCII), so an object key can
// never break the header block.
//
// Outcome of an attempt: kDelivered once JetStream's PubAck arrives (a PubAck
// saying "duplicate" too: the stream already holds the event); kFailed, with
// a short reason, on no ack within `timeout`, no stream capturing the subject
// (no responders), a JetStream error (e.g. the expected stream differs), or
// while the client is not connected. Never kGone.
//
// Connection: made on the target's own thread (Create does not touch the
// network); nats.c reconnects forever in the background, and a failed first
// connect is retried the same way. While disconnected, attempts fail fast
// ("not connected to NATS") instead of queueing.
//
// Threads: Deliver only queues the attempt and returns. One publisher thread
// per target calls js_PublishMsgAsync; PubAcks (and nats.c's own ack
// timeouts) complete attempts on nats.c's threads; failures found by the
// publisher thread complete there. `done` is called without any lock held.
// The destructor cancels what is queued or in flight (their `done` never
// runs), waits for a `done` already running, then closes the connection.
#ifndef UPLOADBROKER_DELIVER_NATS_TARGET_H_
#define UPLOADBROKER_DELIVER_NATS_TARGET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "deliver/target.h"

namespace uploadbroker::deliver {

struct NatsTargetOptions {
  // One server "nats://[user:password@]host[:port]" or several, comma
  // separated (a cluster). Required.
  std::string url;
  // Subject to publish to: dot-separated tokens, no wildcards. Required.
  std::string subject;
  // When set, a PubAck from another stream is a failed attempt.
  std::string stream;
  // How long to wait for the PubAck.
  absl::Duration timeout = absl::Seconds(5);
  // Attempts in flight at once (Target::max_in_flight).
  int max_in_flight = 256;
  // Shown to the NATS server as the connection name and used in log lines.
  std::string name = "nats";
};

class NatsTarget final : public Target {
 public:
  // InvalidArgument naming the field for a bad URL (not nats://, no host, a
  // path or query, a bad port), an empty or wildcard subject, a bad stream
  // name, a timeout that is not positive, max_in_flight < 1. Does not
  // connect (see above).
  static absl::StatusOr<std::unique_ptr<NatsTarget>> Create(NatsTargetOptions options);
  static absl::Status Validate(const NatsTargetOptions& options);

  ~NatsTarget() override;
  NatsTarget(const NatsTarget&) = delete;
  NatsTarget& operator=(const NatsTarget&) = delete;

  int max_batch() const override { return 1; }
  int max_in_flight() const override;
  void Deliver(std::vector<CloudEvent> events,
               std::function<void(AttemptOutcome)> done) override;

  // Whether the client is connected right now (for tests and status).
  bool connected() const;

  struct Core;  // shared with nats.c's callbacks; nats_target.cc

 private:
  explicit NatsTarget(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_NATS_TARGET_H_
