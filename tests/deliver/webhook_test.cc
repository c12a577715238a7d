// WebhookTarget against a real HTTP receiver on loopback.
#include "deliver/webhook_target.h"

#include <set>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/deliver/receiver.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/refused_port.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::deliver {
namespace {

using ::testing::HasSubstr;
using testing::Receiver;

constexpr char kKey1[] = "0123456789abcdef0123456789abcdef";  // 32 bytes
constexpr char kKey2[] = "another-secret-of-24-bytes";

class WebhookTest : public ::testing::Test {
 protected:
  config::WebhookTargetConfig Config(const std::string& url) {
    config::WebhookTargetConfig c;
    c.url = url;
    c.secret_files = {dir_.WriteFile("s1", "whsec_" + common::Base64Encode(kKey1) + "\n"),
                      dir_.WriteFile("s2", "whsec_" + common::Base64Encode(kKey2))};
    c.allow_private_addresses = true;
    c.timeout = absl::Seconds(5);
    return c;
  }
  std::unique_ptr<WebhookTarget> Make(const config::WebhookTargetConfig& c) {
    auto t = WebhookTarget::Create(c, /*development=*/true, "deliveries.targets[0].webhook", client_, clock_);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }
  static CloudEvent Event(uint64_t seq) {
    CloudEvent e;
    e.id = "u-" + std::to_string(seq) + ".completed";
    e.source = "urn:test";
    e.type = "com.uploadbroker.upload.completed";
    e.subject = "uploads/a.png";
    e.time = absl::FromUnixSeconds(1765000000);
    e.sequence = seq;
    e.data = "{\"cursor\":\"" + std::to_string(seq) + "\"}";
    return e;
  }
  AttemptOutcome DeliverSync(Target& t, std::vector<CloudEvent> events) {
    absl::Notification n;
    AttemptOutcome out;
    t.Deliver(std::move(events), [&](AttemptOutcome o) {
      out = o;
      n.Notify();
    });
    n.WaitForNotification();
    return out;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_{absl::FromUnixSeconds(1765000123)};
  WebhookClient client_;
};

TEST_F(WebhookTest, PostsOneSignedStructuredEvent) {
  Receiver rx;
  auto t = Make(Config(rx.url()));
  AttemptOutcome o = DeliverSync(*t, {Event(7)});
  EXPECT_EQ(o.kind, AttemptOutcome::kDelivered) << o.reason;
  ASSERT_EQ(rx.count(), 1u);
  const http::Request r = rx.requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path_raw, "/hook");
  EXPECT_EQ(r.Header("content-type"), "application/cloudevents+json; charset=utf-8");
  EXPECT_EQ(r.Header("webhook-id"), "u-7.completed");
  EXPECT_EQ(r.Header("webhook-timestamp"), "1765000123");
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["id"], "u-7.completed");
  EXPECT_EQ(body["sequence"], "7");
  // One v1 signature per secret, each an HMAC-SHA256 of id.timestamp.body.
  std::vector<std::string> sigs = absl::StrSplit(r.Header("webhook-signature"), ' ');
  const std::string content = "u-7.completed.1765000123." + r.body;
  EXPECT_THAT(sigs, ::testing::ElementsAre("v1," + common::Base64Encode(common::HmacSha256(kKey1, content)),
                                           "v1," + common::Base64Encode(common::HmacSha256(kKey2, content))));
}

TEST_F(WebhookTest, BatchesAreOneArrayWithAStableId) {
  Receiver rx;
  auto c = Config(rx.url());
  c.batch = 10;
  auto t = Make(c);
  EXPECT_EQ(t->max_batch(), 10);
  EXPECT_EQ(DeliverSync(*t, {Event(1), Event(2), Event(3)}).kind, AttemptOutcome::kDelivered);
  EXPECT_EQ(DeliverSync(*t, {Event(1), Event(2), Event(3)}).kind, AttemptOutcome::kDelivered);
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].Header("content-type"), "application/cloudevents-batch+json; charset=utf-8");
  nlohmann::json body = nlohmann::json::parse(reqs[0].body);
  ASSERT_TRUE(body.is_array());
  EXPECT_EQ(body.size(), 3u);
  EXPECT_THAT(reqs[0].Header("webhook-id"), ::testing::StartsWith("batch_"));
  EXPECT_EQ(reqs[0].Header("webhook-id"), reqs[1].Header("webhook-id"));
}

TEST_F(WebhookTest, StatusesBecomeOutcomes) {
  Receiver rx([](const http::Request& r, int) {
    Receiver::Answer a;
    if (r.path_raw == "/500") a.status = 500;
    if (r.path_raw == "/410") a.status = 410;
    if (r.path_raw == "/204") a.status = 204;
    if (r.path_raw == "/429") {
      a.status = 429;
      a.headers = {{"Retry-After", "120"}};
    }
    return a;
  });
  auto fail = DeliverSync(*Make(Config(rx.url("/500"))), {Event(1)});
  EXPECT_EQ(fail.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(fail.reason, "target answered 500");
  auto gone = DeliverSync(*Make(Config(rx.url("/410"))), {Event(1)});
  EXPECT_EQ(gone.kind, AttemptOutcome::kGone);
  EXPECT_EQ(gone.reason, "target answered 410 Gone");
  EXPECT_EQ(DeliverSync(*Make(Config(rx.url("/204"))), {Event(1)}).kind, AttemptOutcome::kDelivered);
  auto limited = DeliverSync(*Make(Config(rx.url("/429"))), {Event(1)});
  EXPECT_EQ(limited.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(limited.retry_after, absl::Seconds(120));
}

TEST_F(WebhookTest, RedirectsAreNotFollowed) {
  Receiver inner;
  Receiver rx([&](const http::Request&, int) {
    Receiver::Answer a;
    a.status = 307;
    a.headers = {{"Location", "http://169.254.169.254/latest/meta-data/"}};
    return a;
  });
  auto o = DeliverSync(*Make(Config(rx.url())), {Event(1)});
  EXPECT_EQ(o.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(o.reason, "target answered 307 (redirects are not followed)");
  EXPECT_EQ(rx.count(), 1u);
}

TEST_F(WebhookTest, HangingReceiverTimesOut) {
  Receiver rx([](const http::Request&, int) { return Receiver::Answer{Receiver::kHang, {}}; });
  auto c = Config(rx.url());
  c.timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  auto o = DeliverSync(*Make(c), {Event(1)});
  EXPECT_EQ(o.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(o.reason, "timed out after 300ms");
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(WebhookTest, RefusedConnectionFails) {
  testing::RefusedPort port;
  auto o = DeliverSync(*Make(Config("http://127.0.0.1:" + std::to_string(port.port()) + "/")), {Event(1)});
  EXPECT_EQ(o.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(o.reason, "connection refused");
}

TEST_F(WebhookTest, ConnectionsAreReused) {
  Receiver rx;
  auto t = Make(Config(rx.url()));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(DeliverSync(*t, {Event(i)}).kind, AttemptOutcome::kDelivered);
  std::set<std::string> peers;
  for (const auto& r : rx.requests()) peers.insert(r.peer);
  EXPECT_EQ(peers.size(), 1u);
}

TEST_F(WebhookTest, SecretsMustBeWhsecBase64AndAreNeverQuoted) {
  auto c = Config("https://hooks.example.com/");
  c.secret_files = {dir_.WriteFile("bad", "sk_live_supersecretvalue")};
  auto t = WebhookTarget::Create(c, false, "deliveries.targets[3].webhook", client_, clock_);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("deliveries.targets[3].webhook.secret_files[0]"));
  EXPECT_THAT(t.status().message(), HasSubstr("whsec_"));
  EXPECT_THAT(t.status().message(), ::testing::Not(HasSubstr("supersecret")));
  c.secret_files = {dir_.WriteFile("short", "whsec_" + common::Base64Encode("short"))};
  EXPECT_THAT(WebhookTarget::Create(c, false, "f", client_, clock_).status().message(),
              HasSubstr("24-64 bytes"));
  c.secret_files = {dir_.File("missing")};
  EXPECT_THAT(WebhookTarget::Create(c, false, "f", client_, clock_).status().message(),
              HasSubstr("cannot read"));
}

// SSRF (deliver/ssrf.h): without allow_private_addresses nothing reaches a
// receiver on loopback, however the URL names it.
TEST_F(WebhookTest, LoopbackLiteralsAreRefusedAtStartup) {
  Receiver rx;
  for (std::string host : {"127.0.0.1", "[::1]", "169.254.169.254", "10.1.2.3", "[::ffff:127.0.0.1]"}) {
    auto c = Config("http://" + host + ":" + std::to_string(rx.port()) + "/");
    c.allow_private_addresses = false;
    auto t = WebhookTarget::Create(c, true, "deliveries.targets[0].webhook", client_, clock_);
    ASSERT_FALSE(t.ok()) << host;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(t.status().message(), HasSubstr("deliveries.targets[0].webhook.url: "));
    EXPECT_THAT(t.status().message(), HasSubstr("webhooks are not sent there"));
  }
  EXPECT_EQ(rx.count(), 0u);
}

TEST_F(WebhookTest, NamesAndNumericFormsResolvingToLoopbackAreRefusedAtConnect) {
  Receiver rx;
  // curl accepts these and connects to 127.0.0.1; either the URL check at
  // startup or the connection check refuses them.
  for (std::string host : {"localhost", "2130706433", "0x7f.1", "0177.0.0.1", "127.1"}) {
    auto c = Config("http://" + host + ":" + std::to_string(rx.port()) + "/");
    c.allow_private_addresses = false;
    auto t = WebhookTarget::Create(c, true, "f", client_, clock_);
    if (!t.ok()) {
      EXPECT_THAT(t.status().message(), HasSubstr("loopback")) << host;
      continue;
    }
    auto o = DeliverSync(**t, {Event(1)});
    EXPECT_EQ(o.kind, AttemptOutcome::kFailed) << host;
    EXPECT_THAT(o.reason, HasSubstr("refused to connect: ")) << host;
    EXPECT_THAT(o.reason, HasSubstr("is a loopback address (allow_private_addresses is off)")) << host;
  }
  EXPECT_EQ(rx.count(), 0u);
}

TEST_F(WebhookTest, DestroyedTargetRunsNoMoreOutcomes) {
  Receiver rx([](const http::Request&, int) { return Receiver::Answer{Receiver::kHang, {}}; });
  auto c = Config(rx.url());
  c.timeout = absl::Milliseconds(200);
  auto t = Make(c);
  std::atomic<int> calls{0};
  t->Deliver({Event(1)}, [&](AttemptOutcome) { ++calls; });
  ASSERT_TRUE(rx.WaitForCount(1));
  t.reset();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace uploadbroker::deliver
