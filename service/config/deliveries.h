// The `deliveries:` section: push targets the brokers deliver events to
// themselves (issue 18). Plain values; immutable once parsed.
//
//   deliveries:
//     source: "urn:upload-broker:prod"      # CloudEvents `source`
//     targets:
//       - name: billing                      # unique; [a-z0-9_-], 1..64
//         caller: app                        # owner: a configured caller
//         filter: {buckets: [photos], key_prefixes: [u/], types: [completed]}
//         ack_deadline: 60s                  # per attempt, at least the timeout
//         max_delivery_attempts: 10
//         webhook:                           # exactly one of webhook / nats
//           url: https://billing.example.com/hooks/uploads
//           secret_files: [/run/secrets/whsec-new, /run/secrets/whsec-old]
//           timeout: 10s
//           batch: 1
//           max_in_flight: 1
//           allow_private_addresses: false
//       - name: bus
//         caller: app
//         nats: {url: "nats://127.0.0.1:4222", subject: uploads.events, stream: UPLOADS, timeout: 5s}
//
// The filter is checked against the caller's scope when the broker starts
// (stream::EventFilter::Create), like a Subscribe request's.
#ifndef UPLOADBROKER_CONFIG_DELIVERIES_H_
#define UPLOADBROKER_CONFIG_DELIVERIES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace uploadbroker::config {

// Subscribe's EventFilter in config form (types: "completed", "expired").
struct DeliveryFilter {
  std::vector<std::string> buckets;
  std::vector<std::string> key_prefixes;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> callers;
  std::vector<std::string> types;
};

struct WebhookTargetConfig {
  // https:// (http:// only with development: true); no user info.
  std::string url;
  // Each file holds one "whsec_<base64>" secret; every one signs every
  // request (rotation: add the new one, then remove the old one).
  std::vector<std::string> secret_files;
  absl::Duration timeout = absl::Seconds(10);
  // Most events per POST (1: one CloudEvent per request, structured mode;
  // more: application/cloudevents-batch+json).
  int64_t batch = 1;
  // Requests under way at once (1..32). 1 keeps first attempts in cursor
  // order; more raise the rate to a slow receiver but may reorder events.
  int64_t max_in_flight = 1;
  // Lets the URL resolve to loopback, private, link-local or metadata
  // addresses (tests, a receiver on the same host). Off by default.
  bool allow_private_addresses = false;
};

// For the NATS JetStream target (deliver/nats_target.*).
struct NatsTargetConfig {
  std::string url;      // nats://host:port (tls:// allowed)
  std::string subject;  // the subject events are published to
  std::string stream;   // the JetStream stream expected to hold `subject`
  absl::Duration timeout = absl::Seconds(10);  // for JetStream's ack
};

struct DeliveryTarget {
  enum class Type { kWebhook, kNats };
  std::string name;
  std::string caller;
  DeliveryFilter filter;
  absl::Duration ack_deadline = absl::Seconds(60);
  int64_t max_delivery_attempts = 10;
  Type type = Type::kWebhook;
  WebhookTargetConfig webhook;  // when type == kWebhook
  NatsTargetConfig nats;        // when type == kNats
};

struct Deliveries {
  std::string source = "urn:upload-broker";
  std::vector<DeliveryTarget> targets;
};

}  // namespace uploadbroker::config

#endif  // UPLOADBROKER_CONFIG_DELIVERIES_H_
