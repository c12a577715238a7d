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

// The README's `ubctl upload --multipart` example is a real video file: the
// dev caller takes files up to 10 GiB (well within OSS's multipart limits,
// 10,000 parts of up to 5 GiB) and a TTL long enough to upload one.
TEST(DevConfig, DevCallerTakesLargeMultipartUploads) {
  auto cfg = config::LoadConfig(std::string(UB_SOURCE_DIR) + "/deploy/dev/broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->callers.size(), 1u);
  const config::Caller& dev = cfg->callers[0];
  EXPECT_EQ(dev.name, "dev");
  EXPECT_GE(dev.max_size, int64_t{5} << 30);
  EXPECT_EQ(dev.max_size, int64_t{10} << 30);
  EXPECT_GE(dev.max_ttl, absl::Hours(6));
}

}  // namespace
}  // namespace uploadbroker
