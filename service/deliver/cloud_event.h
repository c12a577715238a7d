// CloudEvents 1.0 view of a log event: the one shape every delivery path
// (webhook, NATS JetStream, the Consume RPC's documented mapping) uses.
//
// Pure functions; safe from any thread.
//
// Attributes:
//   id              "<upload_id>.<completed|expired>": stable across
//                   redeliveries and brokers (each upload settles once)
//   source          configured (deliveries.source), default
//                   "urn:upload-broker"
//   specversion     "1.0"
//   type            "com.uploadbroker.upload.completed" or
//                   "com.uploadbroker.upload.expired"
//   subject         the object key
//   time            the event's committed_at (RFC 3339, UTC)
//   datacontenttype "application/json"
//   sequence        extension: the log cursor, decimal
//   data            the Event in protobuf's JSON mapping
#ifndef UPLOADBROKER_DELIVER_CLOUD_EVENT_H_
#define UPLOADBROKER_DELIVER_CLOUD_EVENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::deliver {

inline constexpr absl::string_view kDefaultSource = "urn:upload-broker";

struct CloudEvent {
  std::string id;
  std::string source;
  std::string type;
  std::string subject;
  absl::Time time;
  std::string datacontenttype = "application/json";
  uint64_t sequence = 0;
  std::string data;  // JSON text
};

// InvalidArgument for an event with no payload.
absl::StatusOr<CloudEvent> ToCloudEvent(const v1::Event& event, absl::string_view source);
// The `time` attribute's text: RFC 3339 in UTC with as many fractional
// digits as the time has ("2026-12-08T01:00:00.123Z"); binary mode
// (NATS headers) writes the same text.
std::string Rfc3339(absl::Time t);
// Structured mode (application/cloudevents+json): one JSON object.
std::string StructuredJson(const CloudEvent& event);
// Batched mode (application/cloudevents-batch+json): a JSON array.
std::string BatchJson(const std::vector<CloudEvent>& events);

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_CLOUD_EVENT_H_
