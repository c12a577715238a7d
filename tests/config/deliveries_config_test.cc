// The `deliveries:` section (config/deliveries.h).
#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::config {
namespace {

using ::testing::HasSubstr;

std::string Base(bool development = false) {
  return absl::StrCat(development ? "development: true\n" : "", R"(
callback: {url: "https://broker.example.com/oss/callback"}
credentials: {access_key_id_file: /run/ak, access_key_secret_file: /run/sk}
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - {name: app, buckets: [photos], api_key_sha256: ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad}
)");
}

absl::StatusOr<Config> WithTargets(const std::string& targets, bool development = false) {
  return ParseConfig(absl::StrCat(Base(development), "deliveries:\n  source: urn:test\n  targets:\n",
                                  targets),
                     "broker.yaml");
}

constexpr char kWebhook[] = R"(
    - name: billing
      caller: app
      filter: {buckets: [photos], key_prefixes: [u/], types: [completed], metadata: {a: b}}
      ack_deadline: 30s
      max_delivery_attempts: 12
      webhook:
        url: https://hooks.example.com/uploads?x=1
        secret_files: [/run/whsec-new, /run/whsec-old]
        timeout: 5s
        batch: 20
        max_in_flight: 4
        allow_private_addresses: true
)";

TEST(Deliveries, ReadsAWebhookTarget) {
  auto cfg = WithTargets(kWebhook);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->deliveries.source, "urn:test");
  ASSERT_EQ(cfg->deliveries.targets.size(), 1u);
  const DeliveryTarget& t = cfg->deliveries.targets[0];
  EXPECT_EQ(t.name, "billing");
  EXPECT_EQ(t.caller, "app");
  EXPECT_EQ(t.type, DeliveryTarget::Type::kWebhook);
  EXPECT_EQ(t.filter.buckets, std::vector<std::string>{"photos"});
  EXPECT_EQ(t.filter.types, std::vector<std::string>{"completed"});
  EXPECT_EQ(t.filter.metadata.at("a"), "b");
  EXPECT_EQ(t.ack_deadline, absl::Seconds(30));
  EXPECT_EQ(t.max_delivery_attempts, 12);
  EXPECT_EQ(t.webhook.url, "https://hooks.example.com/uploads?x=1");
  EXPECT_EQ(t.webhook.secret_files.size(), 2u);
  EXPECT_EQ(t.webhook.timeout, absl::Seconds(5));
  EXPECT_EQ(t.webhook.batch, 20);
  EXPECT_EQ(t.webhook.max_in_flight, 4);
  EXPECT_TRUE(t.webhook.allow_private_addresses);
}

TEST(Deliveries, DefaultsAndNats) {
  auto cfg = WithTargets(R"(
    - name: hook
      caller: app
      webhook: {url: "https://h.example.com/", secret_files: [/s]}
    - name: bus
      caller: app
      nats: {url: "nats://127.0.0.1:4222", subject: uploads.events, stream: UPLOADS, timeout: 3s}
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const DeliveryTarget& h = cfg->deliveries.targets[0];
  EXPECT_EQ(h.ack_deadline, absl::Seconds(60));
  EXPECT_EQ(h.max_delivery_attempts, 10);
  EXPECT_EQ(h.webhook.timeout, absl::Seconds(10));
  EXPECT_EQ(h.webhook.batch, 1);
  EXPECT_EQ(h.webhook.max_in_flight, 1);
  EXPECT_FALSE(h.webhook.allow_private_addresses);
  const DeliveryTarget& n = cfg->deliveries.targets[1];
  EXPECT_EQ(n.type, DeliveryTarget::Type::kNats);
  EXPECT_EQ(n.nats.url, "nats://127.0.0.1:4222");
  EXPECT_EQ(n.nats.subject, "uploads.events");
  EXPECT_EQ(n.nats.stream, "UPLOADS");
  EXPECT_EQ(n.nats.timeout, absl::Seconds(3));
}

TEST(Deliveries, AbsentSectionMeansNoTargets) {
  auto cfg = ParseConfig(Base(), "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->deliveries.targets.empty());
  EXPECT_EQ(cfg->deliveries.source, "urn:upload-broker");
}

TEST(Deliveries, PlainHttpOnlyInDevelopment) {
  const std::string t = R"(
    - {name: h, caller: app, webhook: {url: "http://127.0.0.1:9/x", secret_files: [/s]}}
)";
  auto refused = WithTargets(t);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr("broker.yaml: deliveries.targets[0].webhook.url: must be https://"));
  EXPECT_TRUE(WithTargets(t, /*development=*/true).ok());
}

struct Bad {
  const char* name;
  const char* targets;
  const char* error;
};

class DeliveriesRefuses : public ::testing::TestWithParam<Bad> {};

TEST_P(DeliveriesRefuses, NamingTheField) {
  auto cfg = WithTargets(GetParam().targets);
  ASSERT_FALSE(cfg.ok()) << GetParam().targets;
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cfg.status().message(), HasSubstr(GetParam().error));
}

#define WH(extra) "{url: \"https://h.example.com/\", secret_files: [/s]" extra "}"
INSTANTIATE_TEST_SUITE_P(
    Config, DeliveriesRefuses,
    ::testing::Values(
        Bad{"UnknownCaller", "    - {name: h, caller: nobody, webhook: " WH("") "}\n",
            "deliveries.targets[0].caller: unknown caller 'nobody'"},
        Bad{"NoCaller", "    - {name: h, webhook: " WH("") "}\n", "deliveries.targets[0].caller: required"},
        Bad{"BadName", "    - {name: \"Bad Name\", caller: app, webhook: " WH("") "}\n",
            "deliveries.targets[0].name: must be 1-64 lowercase"},
        Bad{"Duplicate",
            "    - {name: h, caller: app, webhook: " WH("") "}\n    - {name: h, caller: app, webhook: " WH("") "}\n",
            "deliveries.targets[1].name: 'h' names another target too"},
        Bad{"Neither", "    - {name: h, caller: app}\n", "deliveries.targets[0]: needs exactly one of webhook or nats"},
        Bad{"Both",
            "    - {name: h, caller: app, webhook: " WH("") ", nats: {url: \"nats://x:1\", subject: a}}\n",
            "needs exactly one of webhook or nats"},
        Bad{"UnknownKey", "    - {name: h, caller: app, webhook: " WH(", retries: 3") "}\n",
            "deliveries.targets[0].webhook.retries: unknown field"},
        Bad{"NoSecrets", "    - {name: h, caller: app, webhook: {url: \"https://h.example.com/\"}}\n",
            "webhook.secret_files: required"},
        Bad{"UserInfo",
            "    - {name: h, caller: app, webhook: {url: \"https://u:p@h.example.com/\", secret_files: [/s]}}\n",
            "must not carry a user name or password"},
        Bad{"Ftp", "    - {name: h, caller: app, webhook: {url: \"ftp://h.example.com/\", secret_files: [/s]}}\n",
            "webhook.url: must start with https://"},
        Bad{"NotAUrl", "    - {name: h, caller: app, webhook: {url: \"hooks\", secret_files: [/s]}}\n",
            "webhook.url:"},
        Bad{"Batch", "    - {name: h, caller: app, webhook: " WH(", batch: 0") "}\n",
            "webhook.batch: must be between 1 and 1000"},
        Bad{"HugeBatch", "    - {name: h, caller: app, webhook: " WH(", batch: 100000") "}\n",
            "webhook.batch: must be between 1 and 1000"},
        Bad{"InFlight", "    - {name: h, caller: app, webhook: " WH(", max_in_flight: 0") "}\n",
            "webhook.max_in_flight: must be between 1 and 32"},
        Bad{"Timeout", "    - {name: h, caller: app, webhook: " WH(", timeout: 1h") "}\n",
            "webhook.timeout: must be at most 5m"},
        Bad{"DeadlineBelowTimeout",
            "    - {name: h, caller: app, ack_deadline: 5s, webhook: " WH("") "}\n",
            "ack_deadline: must be longer than the target's timeout (10s)"},
        Bad{"Attempts", "    - {name: h, caller: app, max_delivery_attempts: 0, webhook: " WH("") "}\n",
            "max_delivery_attempts: must be between 1 and 100"},
        Bad{"EventType", "    - {name: h, caller: app, filter: {types: [deleted]}, webhook: " WH("") "}\n",
            "filter.types[0]: 'deleted' is not an event type"},
        Bad{"NatsWildcard", "    - {name: n, caller: app, nats: {url: \"nats://x:1\", subject: \"a.*\"}}\n",
            "nats.subject: must be a NATS subject"},
        Bad{"NatsScheme", "    - {name: n, caller: app, nats: {url: \"http://x:1\", subject: a}}\n",
            "nats.url: must start with nats://"},
        Bad{"NotAList", "    {name: h}\n", "deliveries.targets: must be a list"}),
    [](const ::testing::TestParamInfo<Bad>& info) { return std::string(info.param.name); });
#undef WH

TEST(Deliveries, SourceMustBePrintable) {
  auto cfg = ParseConfig(absl::StrCat(Base(), "deliveries: {source: \"a b\"}\n"), "broker.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("deliveries.source: must be a URI reference"));
}

}  // namespace
}  // namespace uploadbroker::config
