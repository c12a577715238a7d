// PushTargets: the push targets of a config, built and driven: the shared
// WebhookClient, one Target per deliveries.targets entry (webhook_target.h;
// NATS JetStream: nats_target.h), each with its filter checked against its
// caller's scope (stream::EventFilter, as Subscribe checks one), and the
// TargetDriver. The server holds one; nothing runs when no target is
// configured.
//
// Threads: Create and Shutdown from the server's thread. Shutdown is
// idempotent; the destructor calls it.
#ifndef UPLOADBROKER_DELIVER_TARGET_DRIVER_CONFIG_H_
#define UPLOADBROKER_DELIVER_TARGET_DRIVER_CONFIG_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "config/config.h"
#include "deliver/target_driver.h"
#include "deliver/webhook_client.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"

namespace uploadbroker::deliver {

class PushTargets {
 public:
  // InvalidArgument "<config source>: deliveries.targets[i]...: <reason>"
  // for a target that cannot be built (unreadable secret, refused address,
  // a filter outside its caller's scope). `ledger`, `metrics` and `clock`
  // must outlive the result.
  static absl::StatusOr<std::unique_ptr<PushTargets>> Create(const config::Config& config,
                                                             ledger::Ledger& ledger,
                                                             metrics::Registry& metrics,
                                                             const common::Clock& clock,
                                                             DriverOptions options = {});
  ~PushTargets();
  void Shutdown();
  TargetDriver* driver() { return driver_.get(); }

 private:
  PushTargets() = default;
  std::unique_ptr<WebhookClient> webhooks_;
  std::unique_ptr<TargetDriver> driver_;  // destroyed first: its targets use webhooks_
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_TARGET_DRIVER_CONFIG_H_
