#include "deliver/target_driver_config.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "auth/authenticator.h"
#include "deliver/nats_target.h"
#include "deliver/webhook_target.h"
#include "spdlog/spdlog.h"
#include "stream/event_filter.h"

namespace uploadbroker::deliver {
namespace {

v1::EventFilter ToProto(const config::DeliveryFilter& f) {
  v1::EventFilter out;
  for (const auto& b : f.buckets) out.add_buckets(b);
  for (const auto& p : f.key_prefixes) out.add_key_prefixes(p);
  for (const auto& [k, v] : f.metadata) (*out.mutable_metadata())[k] = v;
  for (const auto& c : f.callers) out.add_callers(c);
  for (const auto& t : f.types) {
    out.add_types(t == "completed" ? v1::EVENT_TYPE_UPLOAD_COMPLETED : v1::EVENT_TYPE_UPLOAD_EXPIRED);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PushTargets>> PushTargets::Create(const config::Config& config,
                                                                  ledger::Ledger& ledger,
                                                                  metrics::Registry& metrics,
                                                                  const common::Clock& clock,
                                                                  DriverOptions options) {
  std::unique_ptr<PushTargets> p(new PushTargets());
  if (config.deliveries.targets.empty()) return p;
  p->webhooks_ = std::make_unique<WebhookClient>();
  std::vector<TargetDriver::Driven> driven;
  for (size_t i = 0; i < config.deliveries.targets.size(); ++i) {
    const config::DeliveryTarget& t = config.deliveries.targets[i];
    const std::string field = absl::StrCat("deliveries.targets[", i, "]");
    auto fail = [&](absl::string_view what, const absl::Status& s) {
      return absl::InvalidArgumentError(absl::StrCat(config.source, ": ", field, what, s.message()));
    };
    const config::Caller* caller = nullptr;
    for (const config::Caller& c : config.callers) {
      if (c.name == t.caller) caller = &c;
    }
    if (caller == nullptr) return fail(".caller: ", absl::NotFoundError("unknown caller"));
    absl::StatusOr<stream::EventFilter> filter =
        stream::EventFilter::Create(ToProto(t.filter), auth::IdentityOf(*caller));
    if (!filter.ok()) return fail(".", filter.status());
    std::unique_ptr<Target> target;
    switch (t.type) {
      case config::DeliveryTarget::Type::kWebhook: {
        auto w = WebhookTarget::Create(t.webhook, config.development, field + ".webhook",
                                       *p->webhooks_, clock);
        if (!w.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(config.source, ": ", w.status().message()));
        }
        target = *std::move(w);
        break;
      }
      case config::DeliveryTarget::Type::kNats: {
        NatsTargetOptions o;
        o.url = t.nats.url;
        o.subject = t.nats.subject;
        o.stream = t.nats.stream;
        o.timeout = t.nats.timeout;
        o.name = t.name;
        auto n = NatsTarget::Create(std::move(o));
        if (!n.ok()) return fail(".nats.", n.status());
        target = *std::move(n);
        break;
      }
    }
    driven.push_back(TargetDriver::Driven{t, std::move(target), *std::move(filter)});
  }
  spdlog::info("push targets: {} configured; this broker drives those whose lease it holds",
               driven.size());
  p->driver_ = std::make_unique<TargetDriver>(ledger, metrics, clock, config.deliveries.source,
                                              std::move(driven), std::move(options));
  return p;
}

PushTargets::~PushTargets() { Shutdown(); }

void PushTargets::Shutdown() {
  if (driver_) driver_->Shutdown();
}

}  // namespace uploadbroker::deliver
