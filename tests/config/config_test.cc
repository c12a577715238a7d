#include "config/config.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::config {
namespace {

using ::testing::HasSubstr;

constexpr char kHash[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::string Valid() {
  return std::string(R"(
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
ledger: {path: /tmp/x.db, retain_events: 1000000, retain_age: 720h}
default_ttl: 10m
reconcile: {enabled: true, interval: 30s, grace: 2h}
credentials: {access_key_id_file: /run/ak, access_key_secret_file: /run/sk}
buckets:
  - {name: photos, region: oss-cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - name: app
    api_key_sha256: )") + kHash + R"(
    buckets: [photos]
    key_prefixes: [uploads/]
    max_size: 1048576
    content_types: [image/png]
    max_ttl: 30m
)";
}

TEST(ParseConfig, ReadsEveryField) {
  auto cfg = ParseConfig(Valid(), "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->grpc_listen, "127.0.0.1:0");
  EXPECT_EQ(cfg->default_ttl, absl::Minutes(10));
  EXPECT_EQ(cfg->retain_events, 1000000);
  EXPECT_EQ(cfg->retain_age, absl::Hours(720));
  EXPECT_TRUE(cfg->reconcile);
  EXPECT_EQ(cfg->reconcile_interval, absl::Seconds(30));
  EXPECT_EQ(cfg->reconcile_grace, absl::Hours(2));
  ASSERT_EQ(cfg->buckets.size(), 1u);
  EXPECT_EQ(cfg->buckets[0].region, "cn-hangzhou");  // "oss-" stripped
  EXPECT_EQ(cfg->buckets[0].public_host, "photos.oss-cn-hangzhou.aliyuncs.com");
  EXPECT_EQ(cfg->buckets[0].api_host, "photos.oss-cn-hangzhou.aliyuncs.com");
  EXPECT_EQ(cfg->buckets[0].scheme, "https");
  ASSERT_EQ(cfg->callers.size(), 1u);
  EXPECT_EQ(cfg->callers[0].max_size, 1048576);
  EXPECT_EQ(cfg->callers[0].max_ttl, absl::Minutes(30));
  EXPECT_EQ(cfg->callers[0].key_prefixes, std::vector<std::string>{"uploads/"});
}

// The `tls` section: gRPC TLS with mutual TLS, HTTPS callbacks, and a caller
// that authenticates with a client certificate only.
TEST(ParseConfig, ReadsTheTlsSection) {
  std::string text = Valid() + R"(  - name: cert-app
    client_cert_uri: "spiffe://example.org/cert-app"
    buckets: [photos]
tls:
  grpc: {cert_file: /tls/server.pem, key_file: /tls/server.key, client_ca_file: /tls/ca.pem,
         require_client_cert: true}
  http: {cert_file: /tls/http.pem, key_file: /tls/http.key}
  reload_interval: 5s
)";
  auto cfg = ParseConfig(text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->grpc_tls.cert_file, "/tls/server.pem");
  EXPECT_EQ(cfg->grpc_tls.key_file, "/tls/server.key");
  EXPECT_EQ(cfg->grpc_tls.client_ca_file, "/tls/ca.pem");
  EXPECT_TRUE(cfg->grpc_tls.require_client_cert);
  EXPECT_EQ(cfg->http_tls.cert_file, "/tls/http.pem");
  EXPECT_EQ(cfg->http_tls.key_file, "/tls/http.key");
  EXPECT_EQ(cfg->tls_reload_interval, absl::Seconds(5));
  EXPECT_FALSE(cfg->allow_plaintext_grpc);
  ASSERT_EQ(cfg->callers.size(), 2u);
  EXPECT_EQ(cfg->callers[1].client_cert_uri, "spiffe://example.org/cert-app");
  EXPECT_EQ(cfg->callers[1].api_key_sha256, "");
}

TEST(ParseConfig, PlaintextGrpcOffLoopbackNeedsTheExplicitSwitch) {
  for (const char* loopback : {"127.0.0.1:0", "localhost:50051", "[::1]:50051", "127.1.2.3:1",
                               "127.255.255.254:1", "[::ffff:127.0.0.1]:50051",
                               "unix:/run/ub.sock"}) {
    std::string text = Valid();
    text.replace(text.find("grpc: \"127.0.0.1:0\""), 19, absl::StrCat("grpc: \"", loopback, "\""));
    EXPECT_TRUE(ParseConfig(text, "broker.yaml").ok()) << loopback;
  }
  // Names are not resolved: only the literal "localhost" and loopback
  // literals count, so names that merely start like one are refused.
  for (const char* open :
       {"0.0.0.0:50051", "[::]:50051", "10.0.0.5:50051", "127.attacker.example:50051",
        "127.0.0.1.nip.io:50051", "127.0.0.1.:50051", "127.1:50051", "localhost.attacker.example:1",
        "LOCALHOST.:1", "[::ffff:10.0.0.1]:1", "[::2]:1", "[::1%eth0]:1", "128.0.0.1:1",
        "127.0.0.256:1", ":50051", "[]:1", "0177.0.0.1:1"}) {
    std::string text = Valid();
    text.replace(text.find("grpc: \"127.0.0.1:0\""), 19, absl::StrCat("grpc: \"", open, "\""));
    auto cfg = ParseConfig(text, "broker.yaml");
    ASSERT_FALSE(cfg.ok()) << open;
    EXPECT_THAT(cfg.status().message(),
                HasSubstr(absl::StrCat("broker.yaml: listen.grpc: '", open, "' is not a loopback address")));
    EXPECT_THAT(cfg.status().message(), HasSubstr("tls.allow_plaintext_grpc: true"));
    auto allowed = ParseConfig(text + "tls: {allow_plaintext_grpc: true}\n", "broker.yaml");
    ASSERT_TRUE(allowed.ok()) << allowed.status();
    EXPECT_TRUE(allowed->allow_plaintext_grpc);
    auto with_tls = ParseConfig(text + "tls: {grpc: {cert_file: /c.pem, key_file: /k.pem}}\n", "broker.yaml");
    EXPECT_TRUE(with_tls.ok()) << with_tls.status();
  }
}

TEST(LoadConfig, PlaintextCheckRunsAgainAfterTheListenOverride) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("broker.yaml", Valid());
  setenv("UB_GRPC_LISTEN", "0.0.0.0:50051", 1);
  auto cfg = LoadConfig(path);
  unsetenv("UB_GRPC_LISTEN");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("(after environment overrides): listen.grpc: '0.0.0.0:50051'"));
}

struct BadCase {
  std::string name;  // the case's name in ctest: .../NamingFileFieldAndReason/<name>
  std::string from, to, expect;
};

// Readable test names (the expected error, not the struct's bytes).
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.expect; }

class ParseConfigRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseConfigRejects, NamingFileFieldAndReason) {
  std::string text = Valid();
  size_t at = text.find(GetParam().from);
  ASSERT_NE(at, std::string::npos) << GetParam().from;
  text.replace(at, GetParam().from.size(), GetParam().to);
  auto cfg = ParseConfig(text, "broker.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(cfg.status().message(), HasSubstr("broker.yaml: "));
  EXPECT_THAT(cfg.status().message(), HasSubstr(GetParam().expect));
}

// Short case names: without them ctest names each case after the bytes of
// its parameter, hundreds of characters long.
INSTANTIATE_TEST_SUITE_P(
    Fields, ParseConfigRejects,
    ::testing::Values(
        BadCase{"DefaultTtl", "default_ttl: 10m", "default_ttl: ten", "default_ttl: must be a positive duration"},
        BadCase{"MaxSizeType", "max_size: 1048576", "max_size: big", "callers[0].max_size: must be an integer"},
        BadCase{"MaxSizeRange", "max_size: 1048576", "max_size: 60000000000000", "callers[0].max_size: must be between"},
        BadCase{"MaxTtl", "max_ttl: 30m", "max_ttl: 200h", "callers[0].max_ttl: must be at most 168h"},
        BadCase{"UnknownBucket", "buckets: [photos]", "buckets: [videos]", "callers[0].buckets[0]: unknown bucket 'videos'"},
        BadCase{"KeyHash", kHash, "abc", "callers[0].api_key_sha256: must be 64 lowercase hex"},
        BadCase{"EndpointScheme", "\"https://oss-cn-hangzhou.aliyuncs.com\"", "oss-cn-hangzhou.aliyuncs.com",
                "buckets[0].endpoint: must start with https://"},
        BadCase{"CallbackPath", "https://broker.example.com/oss/callback", "https://broker.example.com",
                "callback.url: must have a host and a path"},
        BadCase{"CallbackPlus", "https://broker.example.com/oss/callback", "https://broker.example.com/a+b",
                "callback.url: must not contain '+'"},
        BadCase{"KeyFilePair", "access_key_id_file: /run/ak, ", "", "credentials: access_key_id_file and access_key_secret_file go together"},
        BadCase{"UnknownField", "default_ttl: 10m", "default_tll: 10m", "default_tll: unknown field"},
        BadCase{"Region", "region: oss-cn-hangzhou, ", "", "buckets[0].region: required"},
        BadCase{"LedgerPath", "path: /tmp/x.db", "path: [1, 2]", "ledger.path: must be a string"},
        BadCase{"RetainEvents", "retain_events: 1000000", "retain_events: -1", "ledger.retain_events: must not be negative"},
        BadCase{"RetainAge", "retain_age: 720h", "retain_age: forever", "ledger.retain_age: must be a positive duration"},
        BadCase{"Grace", "grace: 2h", "grace: soon", "reconcile.grace: must be a positive duration"},
        BadCase{"Enabled", "enabled: true", "enabled: maybe", "reconcile.enabled: must be true or false"},
        BadCase{"Reconcile", "reconcile: {enabled: true, interval: 30s, grace: 2h}", "reconcile: 5",
                "reconcile: must be a map"},
        BadCase{"ConfirmNotBool", "callback: {url: \"https://broker.example.com/oss/callback\"}",
                "callback: {url: \"https://broker.example.com/oss/callback\", confirm_completions: off-ish}",
                "callback.confirm_completions: must be true or false"},
        BadCase{"ConfirmMisspelt", "callback: {url: \"https://broker.example.com/oss/callback\"}",
                "callback: {url: \"https://broker.example.com/oss/callback\", confirm_completion: false}",
                "callback.confirm_completion: unknown field"},
        BadCase{"YamlSyntax", "listen: {", "listen: {{", "line 2"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

// The `tls` section: pairs, dependencies and unknown keys, each naming the field.
INSTANTIATE_TEST_SUITE_P(
    Tls, ParseConfigRejects,
    ::testing::Values(
        BadCase{"TlsUnknown", "default_ttl: 10m", "default_ttl: 10m\ntls: {grcp: {}}", "tls.grcp: unknown field"},
        BadCase{"TlsGrpcUnknown", "default_ttl: 10m", "default_ttl: 10m\ntls: {grpc: {cert: /c}}", "tls.grpc.cert: unknown field"},
        BadCase{"TlsHttpUnknown", "default_ttl: 10m", "default_ttl: 10m\ntls: {http: {ca_file: /c}}", "tls.http.ca_file: unknown field"},
        BadCase{"TlsNotMap", "default_ttl: 10m", "default_ttl: 10m\ntls: on", "tls: must be a map"},
        BadCase{"TlsRepeated", "default_ttl: 10m", "default_ttl: 10m\ntls: {reload_interval: 1s, reload_interval: 2s}",
                "tls.reload_interval: repeated field"},
        BadCase{"TlsKeyWithoutCert", "default_ttl: 10m", "default_ttl: 10m\ntls: {grpc: {key_file: /k}}",
                "tls.grpc.cert_file: required with key_file"},
        BadCase{"TlsCertWithoutKey", "default_ttl: 10m", "default_ttl: 10m\ntls: {grpc: {cert_file: /c}}",
                "tls.grpc.key_file: required with cert_file"},
        BadCase{"TlsHttpPair", "default_ttl: 10m", "default_ttl: 10m\ntls: {http: {cert_file: /c}}",
                "tls.http.key_file: required with cert_file"},
        BadCase{"TlsCaWithoutTls", "default_ttl: 10m", "default_ttl: 10m\ntls: {grpc: {client_ca_file: /ca}}",
                "tls.grpc.client_ca_file: needs cert_file and key_file"},
        BadCase{"TlsRequireWithoutCa", "default_ttl: 10m",
                "default_ttl: 10m\ntls: {grpc: {cert_file: /c, key_file: /k, require_client_cert: true}}",
                "tls.grpc.require_client_cert: needs client_ca_file"},
        BadCase{"TlsRequireNotBool", "default_ttl: 10m",
                "default_ttl: 10m\ntls: {grpc: {cert_file: /c, key_file: /k, client_ca_file: /ca, require_client_cert: yes please}}",
                "tls.grpc.require_client_cert: must be true or false"},
        BadCase{"TlsReload", "default_ttl: 10m", "default_ttl: 10m\ntls: {reload_interval: 500ms}",
                "tls.reload_interval: must be at least 1s"},
        BadCase{"TlsPlaintextNotBool", "default_ttl: 10m", "default_ttl: 10m\ntls: {allow_plaintext_grpc: sure}",
                "tls.allow_plaintext_grpc: must be true or false"},
        BadCase{"CertUriWithoutCa", "max_ttl: 30m", "max_ttl: 30m\n    client_cert_uri: spiffe://x/app",
                "callers[0].client_cert_uri: needs tls.grpc.client_ca_file"},
        BadCase{"CertUriNotUri", "max_ttl: 30m", "max_ttl: 30m\n    client_cert_uri: app",
                "callers[0].client_cert_uri: must be a URI"},
        BadCase{"NoKeyNoUri", std::string("api_key_sha256: ") + kHash, "", "callers[0].api_key_sha256: required"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

// Every mapping rejects keys it does not know, naming the whole path: a
// misspelt setting never falls back to a default silently.
INSTANTIATE_TEST_SUITE_P(
    UnknownKeysAtEveryLevel, ParseConfigRejects,
    ::testing::Values(
        BadCase{"Key1", "key_prefixes: [uploads/]", "key_prefix: [uploads/]", "callers[0].key_prefix: unknown field"},
        BadCase{"Key2", "max_ttl: 30m", "max_ttl: 30m\n    max_tll: 1h", "callers[0].max_tll: unknown field"},
        BadCase{"Key3", "region: oss-cn-hangzhou", "regoin: oss-cn-hangzhou", "buckets[0].regoin: unknown field"},
        BadCase{"Key4", "grpc: \"127.0.0.1:0\"", "grcp: \"127.0.0.1:0\"", "listen.grcp: unknown field"},
        BadCase{"Key5", "url: \"https://broker.example.com/oss/callback\"",
                "url: \"https://broker.example.com/oss/callback\", trusted_key: x", "callback.trusted_key: unknown field"},
        BadCase{"Key6", "retain_age: 720h", "retain_ages: 720h", "ledger.retain_ages: unknown field"},
        BadCase{"Key7", "interval: 30s", "intervall: 30s", "reconcile.intervall: unknown field"},
        BadCase{"Key8", "access_key_id_file: /run/ak", "access_key_file: /run/ak", "credentials.access_key_file: unknown field"},
        BadCase{"Key9", "default_ttl: 10m", "default_ttl: 10m\ndefault_ttl: 20m", "default_ttl: repeated field"},
        BadCase{"Key10", "listen: {grpc: \"127.0.0.1:0\", http: \"127.0.0.1:0\"}", "listen: 5", "listen: must be a map"},
        BadCase{"Key11", "credentials: {access_key_id_file: /run/ak, access_key_secret_file: /run/sk}",
                "credentials: [a]", "credentials: must be a map"}));

// Prefixes and bucket names: what the broker signs must be well-formed.
INSTANTIATE_TEST_SUITE_P(
    Names, ParseConfigRejects,
    ::testing::Values(
        BadCase{"Name1", "key_prefixes: [uploads/]", "key_prefixes: [uploads]", "callers[0].key_prefixes[0]: must end with '/'"},
        BadCase{"Name2", "key_prefixes: [uploads/]", "key_prefixes: [uploads/, \"\"]", "callers[0].key_prefixes[1]: must not be empty"},
        BadCase{"Name3", "key_prefixes: [uploads/]", "key_prefixes: [/uploads/]", "callers[0].key_prefixes[0]: must not start with '/'"},
        BadCase{"Name4", "key_prefixes: [uploads/]", "key_prefixes: [uploads/../]", "callers[0].key_prefixes[0]: contains a '..' path segment"},
        BadCase{"Name5", "key_prefixes: [uploads/]", "key_prefixes: [uploads//]", "callers[0].key_prefixes[0]: contains '//'"},
        BadCase{"Name6", "key_prefixes: [uploads/]", "key_prefixes: [\"up\\u202eloads/\"]",
                "callers[0].key_prefixes[0]: contains a bidirectional control character (U+202E)"},
        BadCase{"Name7", "name: photos", "name: Photos", "buckets[0].name: 'Photos' is not an OSS bucket name"},
        BadCase{"Name8", "name: photos", "name: ph", "buckets[0].name: 'ph' is not an OSS bucket name"},
        BadCase{"Name9", "name: photos", "name: photos-", "buckets[0].name: 'photos-' is not an OSS bucket name"},
        BadCase{"Name10", "name: photos", "name: my_photos", "buckets[0].name: 'my_photos' is not an OSS bucket name"}));

// Without `development: true`, nothing meant for a local simulator passes.
INSTANTIATE_TEST_SUITE_P(
    DevelopmentOnly, ParseConfigRejects,
    ::testing::Values(
        BadCase{"Dev1", "\"https://oss-cn-hangzhou.aliyuncs.com\"", "\"http://127.0.0.1:9000\"",
                "buckets[0].endpoint: must be https:// (plain HTTP exposes signed requests and answers) "
                "(development only: set development: true"},
        BadCase{"Dev2", "url: \"https://broker.example.com/oss/callback\"",
                "url: \"https://broker.example.com/oss/callback\", trusted_key_url: \"http://127.0.0.1:9000/sim_pub_key.pem\", "
                "trusted_key_file: /run/sim.pem",
                "callback.trusted_key_url: trusting a key named by a plain http:// URL is for a simulator"},
        BadCase{"Dev3", "url: \"https://broker.example.com/oss/callback\"",
                "url: \"https://broker.example.com/oss/callback\", trusted_key_url: \"https://keys.example.com/k.pem\"",
                "callback.trusted_key_url: needs callback.trusted_key_file"},
        BadCase{"Dev4", "default_ttl: 10m", "default_ttl: 10m\ndevelopment: yes please", "development: must be true or false"}));

// The callback listener's limits and the admin listener (#12 items 8, 11).
INSTANTIATE_TEST_SUITE_P(
    CallbackListener, ParseConfigRejects,
    ::testing::Values(
        BadCase{"Listener1", "default_ttl: 10m", "default_ttl: 10m\ncallback_listener: {read_timout: 5s}",
                "callback_listener.read_timout: unknown field"},
        BadCase{"Listener2", "default_ttl: 10m", "default_ttl: 10m\ncallback_listener: {read_timeout: 0s}",
                "callback_listener.read_timeout: must be a positive duration"},
        BadCase{"Listener3", "default_ttl: 10m", "default_ttl: 10m\ncallback_listener: {idle_timeout: 11m}",
                "callback_listener.idle_timeout: must be more than 0s and at most 10m"},
        BadCase{"Listener4", "default_ttl: 10m", "default_ttl: 10m\ncallback_listener: {max_connections: 0}",
                "callback_listener.max_connections: must be between 1 and 1000000"},
        BadCase{"Listener5", "default_ttl: 10m",
                "default_ttl: 10m\ncallback_listener: {max_connections: 10, max_connections_per_address: 11}",
                "callback_listener.max_connections_per_address: must not exceed callback_listener.max_connections"},
        BadCase{"Listener6", "default_ttl: 10m",
                "default_ttl: 10m\ncallback_listener: {max_connections: 10, max_connections: 11}",
                "callback_listener.max_connections: repeated field"},
        BadCase{"Listener7", "default_ttl: 10m", "default_ttl: 10m\ncallback_listener: 5",
                "callback_listener: must be a map"},
        BadCase{"Listener8", "http: \"127.0.0.1:0\"}", "http: \"127.0.0.1:0\", admin: [1]}",
                "listen.admin: must be a string"},
        BadCase{"Listener9", "http: \"127.0.0.1:0\"}",
                "http: \"127.0.0.1:0\", admin: \"127.0.0.1:0\", metrics_on_public_port: true}",
                "listen.metrics_on_public_port: only without listen.admin"},
        BadCase{"Listener10", "http: \"127.0.0.1:0\"}",
                "http: \"127.0.0.1:0\", metrics_on_public_port: yes please}",
                "listen.metrics_on_public_port:"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(ParseConfig, CallbackListenerLimitsAndAdminListener) {
  auto defaults = ParseConfig(Valid(), "broker.yaml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->admin_listen, "");
  EXPECT_EQ(defaults->http_read_timeout, absl::Seconds(5));
  EXPECT_EQ(defaults->http_idle_timeout, absl::Seconds(5));
  EXPECT_EQ(defaults->http_max_connections, 1024);
  EXPECT_EQ(defaults->http_max_connections_per_address, 256);
  std::string text = Valid();
  text.replace(text.find("http: \"127.0.0.1:0\"}"), std::string("http: \"127.0.0.1:0\"}").size(),
               "http: \"127.0.0.1:0\", admin: \"127.0.0.1:9090\"}");
  text += "callback_listener: {read_timeout: 2s, idle_timeout: 1s, max_connections: 100, "
          "max_connections_per_address: 10}\n";
  auto cfg = ParseConfig(text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->admin_listen, "127.0.0.1:9090");
  EXPECT_EQ(cfg->http_read_timeout, absl::Seconds(2));
  EXPECT_EQ(cfg->http_idle_timeout, absl::Seconds(1));
  EXPECT_EQ(cfg->http_max_connections, 100);
  EXPECT_EQ(cfg->http_max_connections_per_address, 10);
}

TEST(ParseConfig, DevelopmentAllowsHttpEndpointsAndSimulatorKeys) {
  std::string text = Valid();
  text.replace(text.find("\"https://oss-cn-hangzhou.aliyuncs.com\""),
               std::string("\"https://oss-cn-hangzhou.aliyuncs.com\"").size(), "\"http://127.0.0.1:9000\"");
  text.replace(text.find("callback: {url: \"https://broker.example.com/oss/callback\"}"),
               std::string("callback: {url: \"https://broker.example.com/oss/callback\"}").size(),
               "callback: {url: \"https://broker.example.com/oss/callback\", "
               "trusted_key_url: \"http://127.0.0.1:9000/sim_pub_key.pem\"}");
  EXPECT_FALSE(ParseConfig(text, "broker.yaml").ok());
  auto cfg = ParseConfig("development: true\n" + text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->development);
  EXPECT_EQ(cfg->buckets[0].scheme, "http");
  EXPECT_EQ(cfg->trusted_key_url, "http://127.0.0.1:9000/sim_pub_key.pem");
}

TEST(ParseConfig, ProductionTrustsAnExtraKeyOnlyFromAFileUnderAnHttpsName) {
  std::string text = Valid();
  text.replace(text.find("callback: {url: \"https://broker.example.com/oss/callback\"}"),
               std::string("callback: {url: \"https://broker.example.com/oss/callback\"}").size(),
               "callback: {url: \"https://broker.example.com/oss/callback\", "
               "trusted_key_url: \"https://keys.example.com/k.pem\", trusted_key_file: /run/k.pem}");
  auto cfg = ParseConfig(text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_FALSE(cfg->development);
  EXPECT_EQ(cfg->trusted_key_file, "/run/k.pem");
}

TEST(ParseConfig, CompletionsAreConfirmedUnlessTheFileSaysOtherwise) {
  auto cfg = ParseConfig(Valid(), "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->confirm_completions);
  std::string text = Valid();
  const std::string url = "callback: {url: \"https://broker.example.com/oss/callback\"}";
  text.replace(text.find(url), url.size(),
               "callback: {url: \"https://broker.example.com/oss/callback\", confirm_completions: false}");
  cfg = ParseConfig(text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_FALSE(cfg->confirm_completions);
}

TEST(ParseConfig, KeyPrefixesMayBeLeftOutButNotMisspelt) {
  std::string text = Valid();
  text.replace(text.find("    key_prefixes: [uploads/]\n"), std::string("    key_prefixes: [uploads/]\n").size(), "");
  auto cfg = ParseConfig(text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->callers[0].key_prefixes.empty());  // any key, as documented
}

TEST(LoadConfig, MissingFileNamesThePath) {
  auto cfg = LoadConfig("/nonexistent/broker.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("/nonexistent/broker.yaml"));
}

TEST(LoadConfig, EnvironmentOverridesTheFile) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("broker.yaml", Valid());
  setenv("UB_LEDGER_PATH", "/data/ledger.db", 1);
  setenv("UB_CALLBACK_URL", "https://cb.example.com/hook", 1);
  auto cfg = LoadConfig(path);
  unsetenv("UB_LEDGER_PATH");
  unsetenv("UB_CALLBACK_URL");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->ledger_path, "/data/ledger.db");
  EXPECT_EQ(cfg->callback_url, "https://cb.example.com/hook");
}

TEST(LoadConfig, OverriddenTrustedKeyUrlNeedsTheDevelopmentSwitch) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("broker.yaml", Valid());
  setenv("UB_TRUSTED_KEY_URL", "http://127.0.0.1:9000/sim_pub_key.pem", 1);
  auto cfg = LoadConfig(path);
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("environment overrides"));
  EXPECT_THAT(cfg.status().message(), HasSubstr("callback.trusted_key_url: trusting a key named by a plain http://"));
  std::string dev = dir.WriteFile("dev.yaml", "development: true\n" + Valid());
  cfg = LoadConfig(dev);
  unsetenv("UB_TRUSTED_KEY_URL");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->trusted_key_url, "http://127.0.0.1:9000/sim_pub_key.pem");
}

TEST(LoadConfig, BadOverrideIsRejected) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("broker.yaml", Valid());
  setenv("UB_CALLBACK_URL", "not-a-url", 1);
  auto cfg = LoadConfig(path);
  unsetenv("UB_CALLBACK_URL");
  ASSERT_FALSE(cfg.ok());
  EXPECT_THAT(cfg.status().message(), HasSubstr("environment overrides"));
  EXPECT_THAT(cfg.status().message(), HasSubstr("callback.url"));
}

// The PostgreSQL read pool's size (#17 item 0): 1..256, default 8.
INSTANTIATE_TEST_SUITE_P(
    PostgresReadPool, ParseConfigRejects,
    ::testing::Values(
        BadCase{"ReadPool1", "retain_age: 720h", "retain_age: 720h, postgres: {dsn_file: /run/dsn, max_read_connections: 0}",
                "ledger.postgres.max_read_connections: must be between 1 and 256"},
        BadCase{"ReadPool2", "retain_age: 720h", "retain_age: 720h, postgres: {dsn_file: /run/dsn, max_read_connections: 257}",
                "ledger.postgres.max_read_connections: must be between 1 and 256"},
        BadCase{"ReadPool3", "retain_age: 720h", "retain_age: 720h, postgres: {dsn_file: /run/dsn, max_read_connections: many}",
                "ledger.postgres.max_read_connections: must be an integer"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(ParseConfig, PostgresReadPoolDefaultsToEight) {
  std::string text = Valid();
  text.replace(text.find("retain_age: 720h"), std::string("retain_age: 720h").size(),
               "retain_age: 720h, postgres: {dsn_file: /run/dsn}");
  auto cfg = ParseConfig(text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->postgres_max_read_connections, 8);
  text.replace(text.find("dsn_file: /run/dsn"), std::string("dsn_file: /run/dsn").size(),
               "dsn_file: /run/dsn, max_read_connections: 256");
  cfg = ParseConfig(text, "broker.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->postgres_max_read_connections, 256);
}

}  // namespace
}  // namespace uploadbroker::config
