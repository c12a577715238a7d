// Internal to config/: reading the `deliveries` section (deliveries.h), split
// from config.cc to keep each file about one thing. Same error shape as the
// rest: "<source>: <field>: <reason>".
#ifndef UPLOADBROKER_CONFIG_DELIVERIES_PARSE_H_
#define UPLOADBROKER_CONFIG_DELIVERIES_PARSE_H_

#include "absl/status/status.h"
#include "config/config.h"
#include "config/reader.h"
#include "yaml-cpp/yaml.h"

namespace uploadbroker::config::internal {

// Reads `deliveries` (absent: no targets) into cfg->deliveries. Runs after
// `development` and `callers` are read: a target's caller must be
// configured, and a webhook URL must be https:// unless development.
absl::Status ParseDeliveries(const Reader& r, const YAML::Node& n, Config* cfg);

}  // namespace uploadbroker::config::internal

#endif  // UPLOADBROKER_CONFIG_DELIVERIES_PARSE_H_
