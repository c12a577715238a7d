#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/url.h"
#include "config/deliveries_parse.h"

namespace uploadbroker::config::internal {
namespace {

constexpr absl::string_view kDeliveriesKeys[] = {"source", "targets"};
constexpr absl::string_view kTargetKeys[] = {"name",         "caller",
                                             "filter",       "ack_deadline",
                                             "max_delivery_attempts", "webhook",
                                             "nats"};
constexpr absl::string_view kFilterKeys[] = {"buckets", "key_prefixes", "metadata", "callers",
                                             "types"};
constexpr absl::string_view kWebhookKeys[] = {"url", "secret_files", "timeout", "batch",
                                              "max_in_flight", "allow_private_addresses"};
constexpr absl::string_view kNatsKeys[] = {"url", "subject", "stream", "timeout"};

constexpr size_t kMaxTargets = 1000;
constexpr int64_t kMaxBatch = 1000;
constexpr size_t kMaxSecrets = 10;

bool IsPrintableAscii(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7F) return false;
  }
  return true;
}

bool IsTargetName(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  }
  return true;
}

absl::Status ParseFilter(const Reader& r, const YAML::Node& n, const std::string& f,
                         DeliveryFilter* out) {
  UB_RETURN_IF_ERROR(r.Map(n, f, kFilterKeys));
  if (!n) return absl::OkStatus();
  UB_RETURN_IF_ERROR(r.StringList(n["buckets"], f + ".buckets", &out->buckets));
  UB_RETURN_IF_ERROR(r.StringList(n["key_prefixes"], f + ".key_prefixes", &out->key_prefixes));
  UB_RETURN_IF_ERROR(r.StringMap(n["metadata"], f + ".metadata", &out->metadata));
  UB_RETURN_IF_ERROR(r.StringList(n["callers"], f + ".callers", &out->callers));
  UB_RETURN_IF_ERROR(r.StringList(n["types"], f + ".types", &out->types));
  for (size_t i = 0; i < out->types.size(); ++i) {
    if (out->types[i] != "completed" && out->types[i] != "expired") {
      return r.Fail(absl::StrCat(f, ".types[", i, "]"),
                    absl::StrCat("'", out->types[i], "' is not an event type (completed, expired)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTimeout(const Reader& r, const std::string& field, absl::Duration d) {
  if (d > absl::Minutes(5)) return r.Fail(field, "must be at most 5m");
  return absl::OkStatus();
}

absl::Status ParseWebhook(const Reader& r, const YAML::Node& n, const std::string& f,
                          bool development, WebhookTargetConfig* out) {
  UB_RETURN_IF_ERROR(r.Map(n, f, kWebhookKeys));
  UB_RETURN_IF_ERROR(r.String(n["url"], f + ".url", &out->url, true));
  if (out->url.size() > 2048 || !IsPrintableAscii(out->url)) {
    return r.Fail(f + ".url", "must be at most 2048 printable ASCII characters (percent-encode the rest)");
  }
  absl::StatusOr<common::Url> url = common::ParseUrl(out->url, common::DotSegments::kKeep);
  if (!url.ok()) return r.Fail(f + ".url", url.status().message());
  if (url->scheme != "https" && url->scheme != "http") {
    return r.Fail(f + ".url", "must start with https://");
  }
  if (url->scheme == "http" && !development) {
    return r.Fail(f + ".url",
                  "must be https:// (plain HTTP exposes every event and signature on the way; "
                  "development only: set development: true for a local receiver)");
  }
  const size_t authority_end = out->url.find_first_of("/?#", url->scheme.size() + 3);
  if (out->url.substr(0, authority_end).find('@') != std::string::npos) {
    return r.Fail(f + ".url", "must not carry a user name or password (sign with secret_files)");
  }
  if (out->url.find('#') != std::string::npos) return r.Fail(f + ".url", "must not have a fragment");
  if (url->host.empty()) return r.Fail(f + ".url", "must name a host");

  UB_RETURN_IF_ERROR(r.StringList(n["secret_files"], f + ".secret_files", &out->secret_files));
  if (out->secret_files.empty()) {
    return r.Fail(f + ".secret_files",
                  "required: at least one file holding a whsec_ secret (receivers verify every "
                  "request with it)");
  }
  if (out->secret_files.size() > kMaxSecrets) {
    return r.Fail(f + ".secret_files", absl::StrCat("at most ", kMaxSecrets, " secrets"));
  }
  for (size_t i = 0; i < out->secret_files.size(); ++i) {
    if (out->secret_files[i].empty()) {
      return r.Fail(absl::StrCat(f, ".secret_files[", i, "]"), "must not be empty");
    }
  }
  UB_RETURN_IF_ERROR(r.Duration(n["timeout"], f + ".timeout", &out->timeout));
  UB_RETURN_IF_ERROR(CheckTimeout(r, f + ".timeout", out->timeout));
  UB_RETURN_IF_ERROR(r.Int(n["batch"], f + ".batch", &out->batch));
  if (out->batch < 1 || out->batch > kMaxBatch) {
    return r.Fail(f + ".batch", absl::StrCat("must be between 1 and ", kMaxBatch));
  }
  UB_RETURN_IF_ERROR(r.Int(n["max_in_flight"], f + ".max_in_flight", &out->max_in_flight));
  if (out->max_in_flight < 1 || out->max_in_flight > 32) {
    return r.Fail(f + ".max_in_flight", "must be between 1 and 32");
  }
  return r.Bool(n["allow_private_addresses"], f + ".allow_private_addresses",
                &out->allow_private_addresses);
}

absl::Status ParseNats(const Reader& r, const YAML::Node& n, const std::string& f,
                       NatsTargetConfig* out) {
  UB_RETURN_IF_ERROR(r.Map(n, f, kNatsKeys));
  UB_RETURN_IF_ERROR(r.String(n["url"], f + ".url", &out->url, true));
  if (!absl::StartsWith(out->url, "nats://") && !absl::StartsWith(out->url, "tls://")) {
    return r.Fail(f + ".url", "must start with nats:// or tls://");
  }
  if (!IsPrintableAscii(out->url)) return r.Fail(f + ".url", "must be printable ASCII");
  UB_RETURN_IF_ERROR(r.String(n["subject"], f + ".subject", &out->subject, true));
  if (out->subject.empty() || out->subject.size() > 256 || !IsPrintableAscii(out->subject) ||
      out->subject.find_first_of("*>") != std::string::npos ||
      absl::StartsWith(out->subject, ".") || absl::EndsWith(out->subject, ".") ||
      absl::StrContains(out->subject, "..")) {
    return r.Fail(f + ".subject",
                  "must be a NATS subject without wildcards (tokens separated by '.', at most 256 "
                  "characters)");
  }
  UB_RETURN_IF_ERROR(r.String(n["stream"], f + ".stream", &out->stream));
  if (!IsPrintableAscii(out->stream) || out->stream.find_first_of(".*>") != std::string::npos) {
    return r.Fail(f + ".stream", "must be a JetStream stream name (no spaces, '.', '*' or '>')");
  }
  UB_RETURN_IF_ERROR(r.Duration(n["timeout"], f + ".timeout", &out->timeout));
  return CheckTimeout(r, f + ".timeout", out->timeout);
}

absl::Status ParseTarget(const Reader& r, const YAML::Node& n, const std::string& f,
                         const Config& cfg, DeliveryTarget* t) {
  if (!n.IsMap()) return r.Fail(f, "must be a map");
  UB_RETURN_IF_ERROR(r.Map(n, f, kTargetKeys));
  UB_RETURN_IF_ERROR(r.String(n["name"], f + ".name", &t->name, true));
  if (!IsTargetName(t->name)) {
    return r.Fail(f + ".name", "must be 1-64 lowercase letters, digits, '-' or '_'");
  }
  UB_RETURN_IF_ERROR(r.String(n["caller"], f + ".caller", &t->caller, true));
  bool known = false;
  for (const Caller& c : cfg.callers) known = known || c.name == t->caller;
  if (!known) {
    return r.Fail(f + ".caller", absl::StrCat("unknown caller '", t->caller,
                                              "' (the target's owner must be a configured caller)"));
  }
  UB_RETURN_IF_ERROR(ParseFilter(r, n["filter"], f + ".filter", &t->filter));
  UB_RETURN_IF_ERROR(r.Duration(n["ack_deadline"], f + ".ack_deadline", &t->ack_deadline));
  if (t->ack_deadline < absl::Seconds(1) || t->ack_deadline > absl::Minutes(10)) {
    return r.Fail(f + ".ack_deadline", "must be between 1s and 10m");
  }
  UB_RETURN_IF_ERROR(
      r.Int(n["max_delivery_attempts"], f + ".max_delivery_attempts", &t->max_delivery_attempts));
  if (t->max_delivery_attempts < 1 || t->max_delivery_attempts > 100) {
    return r.Fail(f + ".max_delivery_attempts", "must be between 1 and 100");
  }
  const bool webhook = static_cast<bool>(n["webhook"]);
  const bool nats = static_cast<bool>(n["nats"]);
  if (webhook == nats) return r.Fail(f, "needs exactly one of webhook or nats");
  absl::Duration timeout;
  if (webhook) {
    t->type = DeliveryTarget::Type::kWebhook;
    UB_RETURN_IF_ERROR(ParseWebhook(r, n["webhook"], f + ".webhook", cfg.development, &t->webhook));
    timeout = t->webhook.timeout;
  } else {
    t->type = DeliveryTarget::Type::kNats;
    UB_RETURN_IF_ERROR(ParseNats(r, n["nats"], f + ".nats", &t->nats));
    timeout = t->nats.timeout;
  }
  // An attempt still running when its lease ends would be delivered twice.
  if (t->ack_deadline <= timeout) {
    return r.Fail(f + ".ack_deadline",
                  absl::StrCat("must be longer than the target's timeout (",
                               absl::FormatDuration(timeout), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseDeliveries(const Reader& r, const YAML::Node& n, Config* cfg) {
  UB_RETURN_IF_ERROR(r.Map(n, "deliveries", kDeliveriesKeys));
  if (!n) return absl::OkStatus();
  Deliveries& d = cfg->deliveries;
  UB_RETURN_IF_ERROR(r.String(n["source"], "deliveries.source", &d.source));
  if (d.source.empty() || d.source.size() > 256 || !IsPrintableAscii(d.source)) {
    return r.Fail("deliveries.source",
                  "must be a URI reference of 1-256 printable ASCII characters, e.g. "
                  "urn:upload-broker:prod");
  }
  const YAML::Node targets = n["targets"];
  if (!targets) return absl::OkStatus();
  if (!targets.IsSequence()) return r.Fail("deliveries.targets", "must be a list");
  if (targets.size() > kMaxTargets) {
    return r.Fail("deliveries.targets", absl::StrCat("at most ", kMaxTargets, " targets"));
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string f = absl::StrCat("deliveries.targets[", i, "]");
    DeliveryTarget t;
    UB_RETURN_IF_ERROR(ParseTarget(r, targets[i], f, *cfg, &t));
    for (const DeliveryTarget& other : d.targets) {
      if (other.name == t.name) {
        return r.Fail(f + ".name", absl::StrCat("'", t.name, "' names another target too"));
      }
    }
    d.targets.push_back(std::move(t));
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::config::internal
