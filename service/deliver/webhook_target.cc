#include "deliver/webhook_target.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/url.h"
#include "deliver/ssrf.h"

namespace uploadbroker::deliver {

// Guards `done` against running after the target is gone.
struct WebhookTarget::Alive {
  absl::Mutex mu;
  bool alive ABSL_GUARDED_BY(mu) = true;
};

namespace {

constexpr absl::string_view kSecretPrefix = "whsec_";

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read '", path, "'"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::string> key = ParseWebhookSecret(text.str());
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("'", path, "': ", key.status().message()));
  return key;
}

}  // namespace

absl::StatusOr<std::string> ParseWebhookSecret(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (!absl::ConsumePrefix(&text, kSecretPrefix)) {
    return absl::InvalidArgumentError("must hold one secret starting with whsec_");
  }
  absl::StatusOr<std::string> key = common::Base64Decode(text);
  if (!key.ok()) return absl::InvalidArgumentError("the part after whsec_ must be standard base64");
  if (key->size() < 24 || key->size() > 64) {
    return absl::InvalidArgumentError("the secret must decode to 24-64 bytes");
  }
  return key;
}

std::string SignWebhook(const std::vector<std::string>& secrets, absl::string_view id,
                        int64_t timestamp, absl::string_view body) {
  const std::string signed_content = absl::StrCat(id, ".", timestamp, ".", body);
  std::vector<std::string> parts;
  parts.reserve(secrets.size());
  for (const std::string& key : secrets) {
    parts.push_back(absl::StrCat("v1,", common::Base64Encode(common::HmacSha256(key, signed_content))));
  }
  return absl::StrJoin(parts, " ");
}

absl::StatusOr<std::unique_ptr<WebhookTarget>> WebhookTarget::Create(
    const config::WebhookTargetConfig& config, bool development, const std::string& field,
    WebhookClient& client, const common::Clock& clock) {
  std::vector<std::string> secrets;
  for (size_t i = 0; i < config.secret_files.size(); ++i) {
    absl::StatusOr<std::string> key = ReadSecretFile(config.secret_files[i]);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".secret_files[", i, "]: ", key.status().message()));
    }
    secrets.push_back(*std::move(key));
  }
  absl::StatusOr<common::Url> url = common::ParseUrl(config.url, common::DotSegments::kKeep);
  if (!url.ok()) return absl::InvalidArgumentError(absl::StrCat(field, ".url: ", url.status().message()));
  if (!config.allow_private_addresses) {
    std::string reason = ForbiddenLiteralReason(url->host);
    if (!reason.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".url: ", reason, ": webhooks are not sent there (set allow_private_addresses: "
          "true only for a receiver you run on a private network)"));
    }
  }
  return std::unique_ptr<WebhookTarget>(
      new WebhookTarget(config, development, std::move(secrets), client, clock));
}

WebhookTarget::WebhookTarget(config::WebhookTargetConfig config, bool development,
                             std::vector<std::string> secrets, WebhookClient& client,
                             const common::Clock& clock)
    : config_(std::move(config)),
      development_(development),
      secrets_(std::move(secrets)),
      client_(client),
      clock_(clock),
      alive_(std::make_shared<Alive>()) {}

WebhookTarget::~WebhookTarget() {
  absl::MutexLock lock(&alive_->mu);
  alive_->alive = false;
}

AttemptOutcome WebhookTarget::Judge(const WebhookResponse& r) {
  AttemptOutcome o;
  if (r.status == 0) {
    o.kind = AttemptOutcome::kFailed;
    o.reason = r.error;
    return o;
  }
  if (r.status >= 200 && r.status < 300) {
    o.kind = AttemptOutcome::kDelivered;
    return o;
  }
  o.retry_after = r.retry_after;
  if (r.status == 410) {
    o.kind = AttemptOutcome::kGone;
    o.reason = "target answered 410 Gone";
    return o;
  }
  o.kind = AttemptOutcome::kFailed;
  o.reason = absl::StrCat("target answered ", r.status,
                          r.status >= 300 && r.status < 400 ? " (redirects are not followed)" : "");
  return o;
}

void WebhookTarget::Deliver(std::vector<CloudEvent> events,
                            std::function<void(AttemptOutcome)> done) {
  WebhookRequest req;
  req.url = config_.url;
  req.timeout = config_.timeout;
  req.allow_http = development_;
  req.allow_private_addresses = config_.allow_private_addresses;
  std::string id;
  const bool batch = config_.batch > 1;
  if (batch) {
    req.body = BatchJson(events);
    std::string ids;
    for (const CloudEvent& e : events) absl::StrAppend(&ids, e.id, "\n");
    id = absl::StrCat("batch_", common::HexEncode(common::Sha256(ids)).substr(0, 32));
  } else {
    req.body = events.empty() ? "" : StructuredJson(events[0]);
    id = events.empty() ? "" : events[0].id;
  }
  const int64_t ts = absl::ToUnixSeconds(clock_.Now());
  req.headers = {
      batch ? "Content-Type: application/cloudevents-batch+json; charset=utf-8"
            : "Content-Type: application/cloudevents+json; charset=utf-8",
      absl::StrCat("webhook-id: ", id),
      absl::StrCat("webhook-timestamp: ", ts),
      absl::StrCat("webhook-signature: ", SignWebhook(secrets_, id, ts, req.body)),
  };
  client_.Post(std::move(req), [alive = alive_, done = std::move(done)](WebhookResponse r) {
    absl::MutexLock lock(&alive->mu);
    if (!alive->alive) return;
    done(Judge(r));
  });
}

}  // namespace uploadbroker::deliver
