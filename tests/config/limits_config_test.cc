// The `limits:` section and callers[].read_callers: defaults, values read,
// and errors naming the file, the field and the reason.
#include "config/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::config {
namespace {

using ::testing::HasSubstr;

std::string Hash(char c) { return std::string(64, c); }

std::string WithCallers(const std::string& app_extra, const std::string& tail = "") {
  return R"(
callback: {url: "https://broker.example.com/oss/callback"}
credentials: {access_key_id_file: /run/ak, access_key_secret_file: /run/sk}
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - name: app
    api_key_sha256: )" + Hash('a') + R"(
    buckets: [photos]
)" + app_extra + R"(
  - name: batch
    api_key_sha256: )" + Hash('b') + R"(
    buckets: [photos]
)" + tail;
}

TEST(LimitsConfig, DefaultsBoundMessagesAndStreams) {
  auto cfg = ParseConfig(WithCallers(""), "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->limits.grpc_max_receive_bytes, 1 << 20);
  EXPECT_EQ(cfg->limits.subscribe_streams_per_caller, 16);
  EXPECT_TRUE(cfg->callers[0].read_callers.empty());
}

TEST(LimitsConfig, ReadsLimitsAndReadCallers) {
  auto cfg = ParseConfig(WithCallers("    read_callers: [batch]",
                                     "limits: {grpc_max_receive_bytes: 65536, "
                                     "subscribe_streams_per_caller: 2}\n"),
                         "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->limits.grpc_max_receive_bytes, 65536);
  EXPECT_EQ(cfg->limits.subscribe_streams_per_caller, 2);
  EXPECT_EQ(cfg->callers[0].read_callers, std::vector<std::string>{"batch"});
  cfg = ParseConfig(WithCallers("    read_callers: [\"*\"]"), "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->callers[0].read_callers, std::vector<std::string>{"*"});
}

struct LimitsCase {
  std::string name, app_extra, tail, expect;
};

class LimitsConfigRejects : public ::testing::TestWithParam<LimitsCase> {};

TEST_P(LimitsConfigRejects, NamingFileFieldAndReason) {
  auto cfg = ParseConfig(WithCallers(GetParam().app_extra, GetParam().tail), "broker.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cfg.status().message(), HasSubstr("broker.yaml: "));
  EXPECT_THAT(cfg.status().message(), HasSubstr(GetParam().expect));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, LimitsConfigRejects,
    ::testing::Values(
        LimitsCase{"UnknownReader", "    read_callers: [nobody]", "",
                   "callers[0].read_callers[0]: unknown caller 'nobody'"},
        LimitsCase{"StarNotAlone", "    read_callers: [batch, \"*\"]", "",
                   "callers[0].read_callers[1]: '*' (every caller) must be the only entry"},
        LimitsCase{"RepeatedReader", "    read_callers: [batch, batch]", "",
                   "callers[0].read_callers[1]: 'batch' listed twice"},
        LimitsCase{"ReadersNotAList", "    read_callers: batch", "", "callers[0].read_callers: must be a list"},
        LimitsCase{"UnknownLimit", "", "limits: {max_streams: 3}\n", "limits.max_streams: unknown field"},
        LimitsCase{"NotAMap", "", "limits: 5\n", "limits: must be a map"},
        LimitsCase{"ReceiveTooSmall", "", "limits: {grpc_max_receive_bytes: 1000}\n",
                   "limits.grpc_max_receive_bytes: must be between 65536"},
        LimitsCase{"ReceiveTooLarge", "", "limits: {grpc_max_receive_bytes: 1000000000}\n",
                   "limits.grpc_max_receive_bytes: must be between 65536"},
        LimitsCase{"StreamsZero", "", "limits: {subscribe_streams_per_caller: 0}\n",
                   "limits.subscribe_streams_per_caller: must be between 1 and 10000"},
        LimitsCase{"StreamsNotInt", "", "limits: {subscribe_streams_per_caller: many}\n",
                   "limits.subscribe_streams_per_caller: must be an integer"},
        LimitsCase{"RepeatedLimit", "",
                   "limits: {subscribe_streams_per_caller: 2, subscribe_streams_per_caller: 3}\n",
                   "limits.subscribe_streams_per_caller"}),
    [](const ::testing::TestParamInfo<LimitsCase>& info) { return info.param.name; });

}  // namespace
}  // namespace uploadbroker::config
