// The development config that scripts/run.sh starts the broker with is one
// the broker accepts.
#include <string>

#include "config/config.h"
#include "gtest/gtest.h"

namespace uploadbroker {
namespace {

TEST(DevConfig, IsAcceptedByTheBroker) {
  auto cfg = config::LoadConfig(std::string(UB_SOURCE_DIR) + "/deploy/dev/broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
}

}  // namespace
}  // namespace uploadbroker
