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
  // Metrics on a loopback admin port: the callback port serves none.
  EXPECT_EQ(cfg->admin_listen, "127.0.0.1:9090");
  EXPECT_FALSE(cfg->metrics_on_public_port);
}

}  // namespace
}  // namespace uploadbroker
