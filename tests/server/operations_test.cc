// The broker binary as an operator runs it (#12 items 8 and 11): API keys
// reloaded on SIGHUP, failed authentications counted and logged at a bounded
// rate, untrusted text escaped in log lines, the callback port holding under
// 1,100 idle connections, and a drain that ends in bounded time although
// Subscribe and Watch clients stopped reading.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Exited;
using testing::Subprocess;

std::string Hash(const std::string& key) { return common::HexEncode(common::Sha256(key)); }

// A whole config trusting `signer`, with one bucket and one caller per key.
std::string Yaml(const testing::TempDir& dir, const callback::TestSigner& signer,
                 const std::vector<std::string>& keys, const std::string& bucket = "bkt",
                 const std::string& extra = "") {
  std::string callers;
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::StrAppend(&callers, "  - {name: c", i, ", api_key_sha256: ", Hash(keys[i]),
                    ", buckets: [", bucket, "]}\n");
  }
  return absl::StrCat(testing::BrokerYamlHead(dir, signer, "https://broker.example.com/cb"),
                      "buckets: [{name: bkt, region: cn-hangzhou, endpoint: "
                      "\"https://oss-cn-hangzhou.aliyuncs.com\"}]\n",
                      "reconcile: {enabled: false}\n", extra, "callers:\n", callers);
}

// Replaces the file in one step, as a config management tool would.
void Rewrite(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

// The upload-broker binary on `config`, ready (ports known) or a failure.
class Broker {
 public:
  Broker(const testing::TempDir& dir, const std::string& config,
         std::vector<std::string> flags = {})
      : ready_(dir.File(absl::StrCat("ready-", ++count_, ".json"))) {
    std::vector<std::string> args = {UB_BROKER_BIN, "--config", config, "--ready-file", ready_};
    args.insert(args.end(), flags.begin(), flags.end());
    process_ = std::make_unique<Subprocess>(args);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!std::filesystem::exists(ready_) && absl::Now() < deadline &&
           !process_->Wait(std::chrono::milliseconds(0)).has_value()) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    std::ifstream in(ready_);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) {
      ADD_FAILURE() << "broker not ready: " << process_->StderrSoFar();
      return;
    }
    grpc_port = j["grpc_port"];
    http_port = j["http_port"];
    admin_port = j.value("admin_port", 0);
  }
  Subprocess& process() { return *process_; }
  std::string target() const { return absl::StrCat("127.0.0.1:", grpc_port); }
  // Stops it (SIGTERM) and returns how it ended, waiting up to `limit`.
  std::optional<Exited> Stop(std::chrono::milliseconds limit = std::chrono::seconds(60)) {
    process_->Signal(SIGTERM);
    return process_->Wait(limit);
  }

  int grpc_port = 0;
  int http_port = 0;
  int admin_port = 0;

 private:
  static inline int count_ = 0;
  std::string ready_;
  std::unique_ptr<Subprocess> process_;
};

absl::StatusCode Issue(client::BrokerClient& client, const std::string& key,
                       std::string* upload_id = nullptr,
                       const std::map<std::string, std::string>& metadata = {}) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket("bkt");
  req.set_key(key);
  req.mutable_metadata()->insert(metadata.begin(), metadata.end());
  auto resp = client.CreatePostPolicy(req);
  if (resp.ok() && upload_id != nullptr) *upload_id = resp->upload_id();
  return resp.status().code();
}

std::string Get(int port, const std::string& path, int* status = nullptr) {
  auto c = http::RawClient::Connect(port);
  if (c == nullptr) return "";
  c->Send(absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto reply = c->ReadResponse(absl::Seconds(30));
  if (status != nullptr) *status = reply ? reply->status : 0;
  return reply ? reply->body : "";
}

// The value of the metric line starting with `series` + " ", or -1.
double Metric(int port, const std::string& series) {
  const std::string body = Get(port, "/metrics");
  const std::string prefix = series + " ";
  size_t at = body.find("\n" + prefix);
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + 1 + prefix.size()));
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) n += absl::StrContains(line, needle);
  return n;
}

TEST(OperationsTest, SighupReloadsApiKeysAndABadConfigKeepsTheCurrentOnes) {
  testing::TempDir dir;
  callback::TestSigner signer;
  const std::string path = dir.WriteFile("broker.yaml", Yaml(dir, signer, {"key-old"}));
  Broker broker(dir, path);
  client::BrokerClient old_key(broker.target(), "key-old");
  client::BrokerClient new_key(broker.target(), "key-new");
  ASSERT_EQ(Issue(old_key, "a/1"), absl::StatusCode::kOk);
  ASSERT_EQ(Issue(new_key, "a/2"), absl::StatusCode::kUnauthenticated);

  Rewrite(path, Yaml(dir, signer, {"key-new"}));
  broker.process().Signal(SIGHUP);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Issue(new_key, "a/3") != absl::StatusCode::kOk && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Issue(new_key, "a/4"), absl::StatusCode::kOk);
  EXPECT_EQ(Issue(old_key, "a/5"), absl::StatusCode::kUnauthenticated);

  // Broken YAML, then a caller naming a bucket the broker does not have:
  // both refused with a log line, and the keys in force stay.
  Rewrite(path, "callers: [\n");
  broker.process().Signal(SIGHUP);
  const absl::Time logged = absl::Now() + absl::Seconds(30);
  while (CountLines(broker.process().StdoutSoFar() + broker.process().StderrSoFar(),
                    "SIGHUP: config not reloaded") < 1 &&
         absl::Now() < logged) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::string yaml = Yaml(dir, signer, {"key-other"}, "elsewhere");
  yaml = absl::StrCat(yaml.substr(0, yaml.find("buckets:")),
                      "buckets: [{name: bkt, region: cn-hangzhou, endpoint: "
                      "\"https://oss-cn-hangzhou.aliyuncs.com\"}, {name: elsewhere, region: "
                      "cn-hangzhou, endpoint: \"https://oss-cn-hangzhou.aliyuncs.com\"}]\n",
                      yaml.substr(yaml.find("reconcile:")));
  Rewrite(path, yaml);
  broker.process().Signal(SIGHUP);
  while (CountLines(broker.process().StdoutSoFar() + broker.process().StderrSoFar(),
                    "SIGHUP: config not reloaded") < 2 &&
         absl::Now() < logged) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Issue(new_key, "a/6"), absl::StatusCode::kOk);
  client::BrokerClient other_key(broker.target(), "key-other");
  EXPECT_EQ(Issue(other_key, "a/7"), absl::StatusCode::kUnauthenticated);
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 0) << e->err;
  const std::string log = e->out + e->err;
  EXPECT_EQ(CountLines(log, "SIGHUP: config not reloaded"), 2) << log;
  EXPECT_THAT(log, HasSubstr("names bucket 'elsewhere', which the running broker does not have"));
  EXPECT_EQ(CountLines(log, "reloaded the callers section"), 1) << log;
}

// #17 item 4: SIGHUP that removes a caller ends its open Subscribe stream
// (UNAUTHENTICATED, bounded time, nothing committed after the reload
// delivered); the remaining caller's stream keeps delivering.
TEST(OperationsTest, SighupThatRemovesACallerEndsItsOpenStream) {
  testing::TempDir dir;
  callback::TestSigner signer;
  const std::string path = dir.WriteFile("broker.yaml", Yaml(dir, signer, {"key-gone", "key-kept"}));
  Broker broker(dir, path);
  client::BrokerClient gone(broker.target(), "key-gone");
  client::BrokerClient kept(broker.target(), "key-kept");
  // The stub alone sends no key: each stream carries its own.
  auto open = [&](client::BrokerClient& c, grpc::ClientContext& ctx, const std::string& key) {
    ctx.AddMetadata("authorization", "Bearer " + key);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    auto reader = c.stub().Subscribe(&ctx, v1::SubscribeRequest());
    reader->WaitForInitialMetadata();
    return reader;
  };
  grpc::ClientContext gone_ctx, kept_ctx;
  auto gone_stream = open(gone, gone_ctx, "key-gone");
  auto kept_stream = open(kept, kept_ctx, "key-kept");

  // The reloaded config: c0 removed, c1 (key-kept) unchanged.
  std::string yaml = Yaml(dir, signer, {"key-placeholder", "key-kept"});
  yaml.erase(yaml.find("  - {name: c0"), yaml.find("  - {name: c1") - yaml.find("  - {name: c0"));
  Rewrite(path, yaml);
  broker.process().Signal(SIGHUP);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Issue(gone, "a/probe") != absl::StatusCode::kUnauthenticated && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  // An event committed after the reload, by the caller still configured.
  std::string id;
  ASSERT_EQ(Issue(kept, "a/after", &id), absl::StatusCode::kOk);
  ASSERT_TRUE(kept.AbortUpload(id).ok());

  const absl::Time start = absl::Now();
  v1::SubscribeResponse resp;
  EXPECT_FALSE(gone_stream->Read(&resp)) << "the removed caller received an event";
  grpc::Status st = gone_stream->Finish();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("caller 'c0'"));
  ASSERT_TRUE(kept_stream->Read(&resp));
  EXPECT_EQ(resp.event().upload_expired().upload().upload_id(), id);
  kept_ctx.TryCancel();
  (void)kept_stream->Finish();
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 0) << e->err;
}

TEST(OperationsTest, ThousandBadApiKeysAreCountedAndLoggedAtABoundedRate) {
  testing::TempDir dir;
  callback::TestSigner signer;
  Broker broker(dir, dir.WriteFile("broker.yaml", Yaml(dir, signer, {"key-good"})));
  client::BrokerClient wrong(broker.target(), "key-wrong");
  client::BrokerClient missing(broker.target(), "");
  const absl::Time start = absl::Now();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(Issue(i % 4 == 0 ? missing : wrong, "k"), absl::StatusCode::kUnauthenticated);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  // A second later the next failure is logged again, saying how many were
  // left out since the last line.
  absl::SleepFor(absl::Milliseconds(1100));
  ASSERT_EQ(Issue(wrong, "k"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Metric(broker.http_port, R"(upload_broker_auth_failures_total{reason="unknown_key"})"), 751);
  EXPECT_EQ(Metric(broker.http_port, R"(upload_broker_auth_failures_total{reason="missing"})"), 250);
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  const std::string log = e->out + e->err;
  const int lines = CountLines(log, "gRPC authentication failed from ");
  EXPECT_GE(lines, 1);
  // At most 5 a second (each started second of the run, plus one window).
  EXPECT_LE(lines, 5 * (static_cast<int>(seconds) + 3)) << log;
  EXPECT_LT(lines, 1000);
  std::smatch m;
  const std::regex suppressed(R"(\((\d+) more failures not logged\))");
  int total_suppressed = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), suppressed); it != std::sregex_iterator();
       ++it) {
    total_suppressed += std::stoi((*it)[1]);
  }
  // Every failure is either a line or counted in a later line.
  EXPECT_EQ(lines + total_suppressed, 1001) << log;
}

// A signed callback whose upload id carries a forged log line.
void SendForgery(const callback::TestSigner& signer, int port) {
  const std::string body = nlohmann::json{{"upload_id", "u1\n[2026-12-06 04:00:00.000] [info] FORGED"},
                                          {"bucket", "bkt"},
                                          {"object", "forged/k"},
                                          {"size", 1},
                                          {"etag", "\"e\""}}
                               .dump();
  auto c = http::RawClient::Connect(port);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send(testing::SignedCallback(signer, "/cb", "/cb", body)));
  auto reply = c->ReadResponse(absl::Seconds(30));
  ASSERT_TRUE(reply.has_value());
  EXPECT_GE(reply->status, 400);
}

TEST(OperationsTest, ANewlineInACallbackCannotForgeATextLogLine) {
  testing::TempDir dir;
  callback::TestSigner signer;
  Broker broker(dir, dir.WriteFile("broker.yaml", Yaml(dir, signer, {"k"})));
  SendForgery(signer, broker.http_port);
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  const std::string log = e->out + e->err;
  EXPECT_THAT(log, HasSubstr("callback rejected from 127.0.0.1:"));
  EXPECT_THAT(log, HasSubstr("\\x0a[2026-12-06 04:00:00.000] [info] FORGED"));
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "[2026-12-06 04:00:00.000]")) << "forged: " << line;
    EXPECT_FALSE(absl::StartsWith(line, "FORGED")) << line;
  }
}

TEST(OperationsTest, ANewlineInACallbackIsEscapedInJsonLogsToo) {
  testing::TempDir dir;
  callback::TestSigner signer;
  Broker broker(dir, dir.WriteFile("broker.yaml", Yaml(dir, signer, {"k"})), {"--log-format=json"});
  SendForgery(signer, broker.http_port);
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  int rejected = 0;
  for (absl::string_view line : absl::StrSplit(e->out + e->err, '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not one JSON object: " << line;
    const std::string msg = j.value("msg", "");
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    if (absl::StartsWith(msg, "callback rejected")) {
      ++rejected;
      EXPECT_THAT(msg, HasSubstr("u1\\x0a[2026-12-06 04:00:00.000] [info] FORGED"));
    }
  }
  EXPECT_EQ(rejected, 1);
}

TEST(OperationsTest, AFloodOfForgedCallbacksIsLoggedAtABoundedRate) {
  testing::TempDir dir;
  callback::TestSigner signer;
  callback::TestSigner stranger;  // a key the broker does not trust
  Broker broker(dir, dir.WriteFile("broker.yaml", Yaml(dir, signer, {"k"})));
  const absl::Time start = absl::Now();
  for (int i = 0; i < 300; ++i) {
    auto c = http::RawClient::Connect(broker.http_port);
    ASSERT_NE(c, nullptr);
    ASSERT_TRUE(c->Send(testing::SignedCallback(stranger, "/cb", "/cb", R"({"upload_id":"x"})")));
    auto reply = c->ReadResponse(absl::Seconds(30));
    ASSERT_TRUE(reply.has_value());
    ASSERT_GE(reply->status, 400);
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  // A second later the next rejection is logged, counting those left out.
  absl::SleepFor(absl::Milliseconds(1100));
  auto last = http::RawClient::Connect(broker.http_port);
  ASSERT_TRUE(last->Send(testing::SignedCallback(stranger, "/cb", "/cb", R"({"upload_id":"x"})")));
  ASSERT_TRUE(last->ReadResponse(absl::Seconds(30)).has_value());
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  const std::string log = e->out + e->err;
  const int lines = CountLines(log, "callback rejected from ");
  EXPECT_GE(lines, 1);
  EXPECT_LE(lines, 5 * (static_cast<int>(seconds) + 3)) << log;
  if (lines < 301) EXPECT_THAT(log, HasSubstr("more rejections not logged)"));
}

TEST(OperationsTest, ElevenHundredIdleConnectionsLeaveHealthAndCallbacksFast) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur < 4096) {  // the broker inherits it
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4096);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  }
  testing::TempDir dir;
  callback::TestSigner signer;
  Broker broker(dir, dir.WriteFile("broker.yaml", Yaml(dir, signer, {"k"})));
  client::BrokerClient client(broker.target(), "k");
  std::string id;
  ASSERT_EQ(Issue(client, "flood/1", &id), absl::StatusCode::kOk);

  std::vector<std::unique_ptr<http::RawClient>> idle;
  for (int i = 0; i < 1100; ++i) {
    idle.push_back(http::RawClient::Connect(broker.http_port));
    ASSERT_NE(idle.back(), nullptr) << "connection " << i;
  }
  absl::Time start = absl::Now();
  int status = 0;
  EXPECT_EQ(Get(broker.http_port, "/healthz", &status), R"({"status":"ok"})");
  EXPECT_EQ(status, 200);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  start = absl::Now();
  const std::string body = nlohmann::json{{"upload_id", id}, {"bucket", "bkt"}, {"object", "flood/1"},
                                          {"size", 1}, {"etag", "\"e\""}}
                               .dump();
  auto c = http::RawClient::Connect(broker.http_port);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Send(testing::SignedCallback(signer, "/cb", "/cb", body)));
  auto reply = c->ReadResponse(absl::Seconds(30));
  const absl::Duration elapsed = absl::Now() - start;
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200) << reply->body;
  EXPECT_LT(elapsed, absl::Seconds(1));
  // The rest of the flood is accepted (and evicted) in the loops' own time.
  const std::string evicted = R"(upload_broker_http_rejected_total{reason="evicted_idle"})";
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Metric(broker.http_port, evicted) < 1100 - 256 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_GE(Metric(broker.http_port, evicted), 1100 - 256);
  idle.clear();
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 0);
}

TEST(OperationsTest, WithoutAdminListenerMetricsAreNotServedOnTheCallbackPort) {
  testing::TempDir dir;
  callback::TestSigner signer;
  std::string yaml = Yaml(dir, signer, {"k"});
  const std::string on_public = ", metrics_on_public_port: true}";
  yaml.replace(yaml.find(on_public), on_public.size(), "}");
  Broker broker(dir, dir.WriteFile("broker.yaml", yaml));
  int status = 0;
  const std::string body = Get(broker.http_port, "/metrics", &status);
  EXPECT_EQ(status, 404);
  EXPECT_THAT(body, Not(HasSubstr("upload_broker_")));
  EXPECT_THAT(body, HasSubstr("listen.admin"));
  for (const char* path : {"/metrics/", "/metrics?x=1", "//metrics", "/METRICS", "/%6detrics"}) {
    EXPECT_THAT(Get(broker.http_port, path, &status), Not(HasSubstr("upload_broker_"))) << path;
  }
  Get(broker.http_port, "/healthz", &status);
  EXPECT_EQ(status, 200);
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  EXPECT_THAT(e->out + e->err, HasSubstr("/metrics is not served: listen.admin is unset"));
}

TEST(OperationsTest, AdminListenerServesMetricsAndTheCallbackPortDoesNot) {
  testing::TempDir dir;
  callback::TestSigner signer;
  std::string yaml = Yaml(dir, signer, {"k"});
  const std::string on_public = "metrics_on_public_port: true}";
  yaml.replace(yaml.find(on_public), on_public.size(), "admin: \"127.0.0.1:0\"}");
  Broker broker(dir, dir.WriteFile("broker.yaml", yaml));
  ASSERT_GT(broker.admin_port, 0);
  ASSERT_NE(broker.admin_port, broker.http_port);
  int status = 0;
  Get(broker.http_port, "/metrics", &status);
  EXPECT_EQ(status, 404);
  EXPECT_THAT(Get(broker.admin_port, "/metrics", &status), HasSubstr("upload_broker_"));
  EXPECT_EQ(status, 200);
  for (int port : {broker.http_port, broker.admin_port}) {
    Get(port, "/healthz", &status);
    EXPECT_EQ(status, 200);
    Get(port, "/readyz", &status);
    EXPECT_EQ(status, 200);
  }
  // Callbacks only on the public port.
  auto c = http::RawClient::Connect(broker.admin_port);
  ASSERT_TRUE(c->Send(testing::SignedCallback(signer, "/cb", "/cb", "{}")));
  EXPECT_EQ(c->ReadResponse().value_or(http::Reply{}).status, 405);
  std::optional<Exited> e = broker.Stop();
  ASSERT_TRUE(e.has_value());
  EXPECT_THAT(e->out + e->err, HasSubstr("admin listening on port"));
}

TEST(OperationsTest, SigtermWithStalledSubscribeAndWatchClientsExitsWithinTheBound) {
  testing::TempDir dir;
  callback::TestSigner signer;
  const std::string config = dir.WriteFile("broker.yaml", Yaml(dir, signer, {"k"}));
  auto broker = std::make_unique<Broker>(dir, config);
  client::BrokerClient client(broker->target(), "k");

  // Client-side flow control small enough that a client that stops reading
  // blocks the broker's writes to it after a few events.
  grpc::ChannelArguments small;
  small.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  small.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
  auto channel = grpc::CreateCustomChannel(broker->target(), grpc::InsecureChannelCredentials(), small);
  auto stub = v1::UploadBroker::NewStub(channel);
  grpc::ClientContext subscribe_ctx;
  subscribe_ctx.AddMetadata("authorization", "Bearer k");
  v1::SubscribeRequest subscribe;
  subscribe.set_start(v1::START_POSITION_LATEST);
  auto stalled = stub->Subscribe(&subscribe_ctx, subscribe);
  stalled->WaitForInitialMetadata();
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext watch_ctx;
  auto watch = health->Watch(&watch_ctx, grpc::health::v1::HealthCheckRequest());

  // Events far beyond the stalled window (each carries 2 KB of metadata).
  std::vector<std::string> acknowledged;
  const std::map<std::string, std::string> blob = {{"a", std::string(1000, 'x')},
                                                   {"b", std::string(1000, 'y')}};
  for (int i = 0; i < 600; ++i) {
    std::string id;
    if (Issue(client, absl::StrCat("stall/", i), &id, blob) == absl::StatusCode::kOk) {
      acknowledged.push_back(id);
    }
  }
  ASSERT_EQ(acknowledged.size(), 600u);

  const absl::Time start = absl::Now();
  std::optional<Exited> e = broker->Stop(std::chrono::seconds(120));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(e.has_value()) << "did not exit";
  EXPECT_EQ(e->code, 0) << e->err;
  EXPECT_LT(took, server::kDrainBound) << "drain exceeded its documented bound";
  subscribe_ctx.TryCancel();
  watch_ctx.TryCancel();
  broker.reset();

  // Nothing acknowledged was lost.
  Broker again(dir, config);
  client::BrokerClient reader(again.target(), "k");
  for (const std::string& id : acknowledged) {
    auto upload = reader.GetUpload(id);
    ASSERT_TRUE(upload.ok()) << id << ": " << upload.status();
  }
}

}  // namespace
}  // namespace uploadbroker
