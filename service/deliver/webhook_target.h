// WebhookTarget: a push target that POSTs CloudEvents over HTTPS, signed
// the Standard Webhooks way (docs/deliveries.md, "Webhooks").
//
// One Deliver call = one POST:
//   one event   Content-Type: application/cloudevents+json (structured mode)
//   a batch     Content-Type: application/cloudevents-batch+json (JSON array)
//   webhook-id         the event's CloudEvent id (a batch: "batch_" + hex
//                      SHA-256 of its ids, so the same batch keeps its id)
//   webhook-timestamp  Unix seconds of this attempt
//   webhook-signature  "v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>"
//                      once per configured secret, space-separated
// The outcome: a 2xx delivers; 410 is kGone; any other status (3xx too:
// redirects are not followed), a timeout or a refused connection is kFailed
// with a short reason, and the answer's Retry-After is passed on.
//
// Threads: see target.h. Deliver starts the POST on the shared
// WebhookClient and returns; `done` runs on the client's thread. The
// destructor waits for a `done` that is running and stops later ones.
#ifndef UPLOADBROKER_DELIVER_WEBHOOK_TARGET_H_
#define UPLOADBROKER_DELIVER_WEBHOOK_TARGET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "config/deliveries.h"
#include "deliver/target.h"
#include "deliver/webhook_client.h"

namespace uploadbroker::deliver {

// One "whsec_<base64>" secret as configured: the HMAC key is the decoded
// base64. InvalidArgument (never quoting the secret) when it is not that.
absl::StatusOr<std::string> ParseWebhookSecret(absl::string_view text);

// The webhook-signature header value for `secrets` (decoded keys).
std::string SignWebhook(const std::vector<std::string>& secrets, absl::string_view id,
                        int64_t timestamp, absl::string_view body);

class WebhookTarget final : public Target {
 public:
  // Reads the secret files. InvalidArgument naming `field` (e.g.
  // "deliveries.targets[0].webhook") for an unreadable or malformed secret,
  // and for a URL naming a refused numeric address (ssrf.h) unless
  // allow_private_addresses. `client` and `clock` must outlive the target.
  static absl::StatusOr<std::unique_ptr<WebhookTarget>> Create(
      const config::WebhookTargetConfig& config, bool development, const std::string& field,
      WebhookClient& client, const common::Clock& clock);
  ~WebhookTarget() override;

  int max_batch() const override { return static_cast<int>(config_.batch); }
  // webhook.max_in_flight (default 1: one request at a time, so first
  // attempts arrive in cursor order).
  int max_in_flight() const override { return static_cast<int>(config_.max_in_flight); }
  void Deliver(std::vector<CloudEvent> events, std::function<void(AttemptOutcome)> done) override;

  // What an answer means (exposed for tests).
  static AttemptOutcome Judge(const WebhookResponse& response);

 private:
  struct Alive;
  WebhookTarget(config::WebhookTargetConfig config, bool development,
                std::vector<std::string> secrets, WebhookClient& client,
                const common::Clock& clock);

  const config::WebhookTargetConfig config_;
  const bool development_;
  const std::vector<std::string> secrets_;
  WebhookClient& client_;
  const common::Clock& clock_;
  std::shared_ptr<Alive> alive_;
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_WEBHOOK_TARGET_H_
