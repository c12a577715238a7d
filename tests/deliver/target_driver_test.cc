// TargetDriver with WebhookTargets against real receivers, over the
// in-memory subscription ledger (subscription_fake.h) and a FakeClock.
#include "deliver/target_driver.h"

#include "absl/strings/str_cat.h"
#include "common/encoding.h"
#include "deliver/webhook_target.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/deliver/receiver.h"
#include "tests/deliver/subscription_fake.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::deliver {
namespace {

using testing::Receiver;

const absl::Time kStart = absl::FromUnixSeconds(1765000000);

class DriverTest : public ::testing::Test {
 protected:
  config::DeliveryTarget Target(const std::string& name, const std::string& url) {
    config::DeliveryTarget t;
    t.name = name;
    t.caller = "app";
    t.ack_deadline = absl::Seconds(30);
    t.webhook.url = url;
    t.webhook.secret_files = {dir_.WriteFile("s-" + name, "whsec_" + common::Base64Encode(std::string(32, 'k')))};
    t.webhook.allow_private_addresses = true;
    t.webhook.timeout = absl::Seconds(5);
    return t;
  }
  TargetDriver::Driven Drive(const config::DeliveryTarget& t) {
    auth::Identity app;
    app.name = "app";
    app.scope.buckets = {"photos"};
    auto filter = stream::EventFilter::Create(v1::EventFilter(), app);
    auto target = WebhookTarget::Create(t.webhook, true, "t", client_, clock_);
    EXPECT_TRUE(target.ok()) << target.status();
    return TargetDriver::Driven{t, *std::move(target), *std::move(filter)};
  }
  std::unique_ptr<TargetDriver> Start(std::vector<config::DeliveryTarget> targets,
                                      const std::string& holder = "broker-1") {
    std::vector<TargetDriver::Driven> driven;
    for (const auto& t : targets) driven.push_back(Drive(t));
    DriverOptions o;
    o.holder = holder;
    o.claim_poll = absl::Milliseconds(100);
    o.random = [] { return 0.5; };
    // One registry per broker (a second driver would register its metrics twice).
    metrics::Registry& registry = holder == "broker-1" ? metrics_ : other_metrics_;
    auto d = std::make_unique<TargetDriver>(ledger_, registry, clock_, "urn:test", std::move(driven), o);
    for (const auto& t : targets) WaitFor([&] { return ledger_.GetSubscription(TargetSubscriptionKey(t)).ok(); });
    return d;
  }
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      const std::string id = absl::StrCat("u", next_++);
      ledger::Upload u;
      u.set_upload_id(id);
      u.set_caller("app");
      u.set_bucket("photos");
      u.set_key("users/" + id);
      u.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(kStart + absl::Hours(1)));
      ASSERT_TRUE(ledger::CreateIntentSync(ledger_, u).ok());
      v1::Completion c;
      c.set_key("users/" + id);
      ASSERT_TRUE(ledger::CompleteUploadSync(ledger_, id, c).ok());
    }
  }
  static void WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time end = absl::Now() + timeout;
    while (!cond() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_TRUE(cond());
  }
  // Advances the fake clock and wakes the driver.
  void Advance(TargetDriver& d, absl::Duration by) {
    clock_.Advance(by);
    d.Poke();
  }

  testing::TempDir dir_;
  testing::FakeClock clock_{kStart};
  testing::SubscriptionFake ledger_{&clock_};
  metrics::Registry metrics_;
  metrics::Registry other_metrics_;
  WebhookClient client_;
  int next_ = 1;
};

TEST_F(DriverTest, DeliversEveryNewEventOnceInOrderAndAcks) {
  Receiver rx;
  auto t = Target("billing", rx.url());
  auto d = Start({t});
  Append(5);
  ASSERT_TRUE(rx.WaitForCount(5));
  Append(3);
  ASSERT_TRUE(rx.WaitForCount(8));
  auto reqs = rx.requests();
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto j = nlohmann::json::parse(reqs[i].body);
    EXPECT_EQ(j["sequence"], std::to_string(i + 1));
    EXPECT_EQ(reqs[i].Header("webhook-id"), absl::StrCat("u", i + 1, ".completed"));
    EXPECT_EQ(j["source"], "urn:test");
  }
  const auto key = TargetSubscriptionKey(t);
  EXPECT_EQ(key.name, "target-billing");
  WaitFor([&] { return ledger_.GetSubscription(key)->ack_floor == 8; });
  for (auto [cursor, times] : ledger_.acks(key)) EXPECT_EQ(times, 1) << cursor;
  EXPECT_TRUE(d->StatsOf("billing").driving);
  EXPECT_EQ(d->StatsOf("billing").delivered, 8);
  EXPECT_THAT(metrics_.Render(),
              ::testing::HasSubstr("upload_broker_target_attempts_total{target=\"billing\",result=\"delivered\"} 8"));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(rx.count(), 8u);  // nothing twice
}

TEST_F(DriverTest, EventsBeforeTheTargetExistedAreNotSent) {
  Append(3);
  Receiver rx;
  auto d = Start({Target("late", rx.url())});
  Append(1);
  ASSERT_TRUE(rx.WaitForCount(1));
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_EQ(rx.count(), 1u);
  EXPECT_EQ(rx.requests()[0].Header("webhook-id"), "u4.completed");
}

TEST_F(DriverTest, FailuresAreRetriedOnTheDocumentedSchedule) {
  Receiver rx([](const http::Request&, int index) { return Receiver::Answer{index < 3 ? 500 : 200, {}}; });
  auto t = Target("flaky", rx.url());
  auto d = Start({t});
  Append(1);
  ASSERT_TRUE(rx.WaitForCount(1));
  // 5 s, 15 s, 45 s (jitter draw 0.5 = no jitter).
  const absl::Duration waits[] = {absl::Seconds(5), absl::Seconds(15), absl::Seconds(45)};
  for (int i = 0; i < 3; ++i) {
    WaitFor([&] { return ledger_.nacks().size() == static_cast<size_t>(i + 1); });
    auto nack = ledger_.nacks()[i];
    EXPECT_EQ(nack.attempt, i + 1);
    EXPECT_EQ(nack.retry_after, waits[i]);
    EXPECT_EQ(nack.reason, "target answered 500");
    Advance(*d, waits[i] - absl::Seconds(1));
    absl::SleepFor(absl::Milliseconds(150));
    EXPECT_EQ(rx.count(), static_cast<size_t>(i + 1)) << "retried early";
    Advance(*d, absl::Seconds(1));
    ASSERT_TRUE(rx.WaitForCount(i + 2));
  }
  WaitFor([&] { return ledger_.GetSubscription(TargetSubscriptionKey(t))->ack_floor == 1; });
  auto reqs = rx.requests();
  for (const auto& r : reqs) EXPECT_EQ(r.Header("webhook-id"), "u1.completed");  // same id every time
  EXPECT_THAT(metrics_.Render(),
              ::testing::HasSubstr("upload_broker_target_attempts_total{target=\"flaky\",result=\"failed\"} 3"));
}

TEST_F(DriverTest, RetryAfterIsHonoured) {
  Receiver rx([](const http::Request&, int) {
    return Receiver::Answer{503, {{"Retry-After", "600"}}};
  });
  auto d = Start({Target("busy", rx.url())});
  Append(1);
  WaitFor([&] { return !ledger_.nacks().empty(); });
  EXPECT_EQ(ledger_.nacks()[0].retry_after, absl::Seconds(600));
  EXPECT_EQ(ledger_.nacks()[0].reason, "target answered 503");
}

TEST_F(DriverTest, EventIsDeadAfterMaxAttempts) {
  Receiver rx([](const http::Request&, int) { return Receiver::Answer{500, {}}; });
  auto t = Target("dead", rx.url());
  t.max_delivery_attempts = 3;
  auto d = Start({t});
  Append(1);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(rx.WaitForCount(i));
    WaitFor([&] { return ledger_.nacks().size() == static_cast<size_t>(i); });
    Advance(*d, absl::Hours(1));
  }
  const auto key = TargetSubscriptionKey(t);
  WaitFor([&] { return ledger_.ListDeadLetters(key, 0, 10)->size() == 1; });
  auto dead = (*ledger_.ListDeadLetters(key, 0, 10))[0];
  EXPECT_EQ(dead.cursor, 1u);
  ASSERT_EQ(dead.attempts.size(), 3u);
  EXPECT_EQ(dead.attempts[2].reason, "target answered 500");
  EXPECT_EQ(ledger_.GetSubscription(key)->ack_floor, 1u);  // no longer holds the floor up
  EXPECT_EQ(d->StatsOf("dead").dead, 1);
  EXPECT_THAT(metrics_.Render(), ::testing::HasSubstr("upload_broker_target_dead_letters_total{target=\"dead\"} 1"));
  Advance(*d, absl::Hours(10));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(rx.count(), 3u);
}

TEST_F(DriverTest, GoneDisablesTheTarget) {
  Receiver rx([](const http::Request&, int) { return Receiver::Answer{410, {}}; });
  auto d = Start({Target("gone", rx.url())});
  Append(2);
  WaitFor([&] { return d->StatsOf("gone").disabled; });
  Append(2);
  Advance(*d, absl::Hours(1));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(rx.count(), 1u);
  EXPECT_THAT(metrics_.Render(), ::testing::HasSubstr("upload_broker_target_disabled{target=\"gone\"} 1"));
  EXPECT_THAT(metrics_.Render(),
              ::testing::HasSubstr("upload_broker_target_attempts_total{target=\"gone\",result=\"gone\"} 1"));
}

TEST_F(DriverTest, HangingTargetDoesNotSlowAnother) {
  Receiver hang([](const http::Request&, int) { return Receiver::Answer{Receiver::kHang, {}}; });
  Receiver fast;
  auto d = Start({Target("hang", hang.url()), Target("fast", fast.url())});
  const absl::Time start = absl::Now();
  Append(50);
  ASSERT_TRUE(fast.WaitForCount(50, absl::Seconds(4)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(hang.count(), 1u);  // one request at a time, still waiting
}

TEST_F(DriverTest, AnotherBrokerTakesOverWhenOneShutsDown) {
  Receiver rx;
  auto t = Target("shared", rx.url());
  auto d1 = Start({t}, "broker-1");
  WaitFor([&] { return d1->StatsOf("shared").driving; });
  auto d2 = Start({t}, "broker-2");
  Append(3);
  ASSERT_TRUE(rx.WaitForCount(3));
  EXPECT_FALSE(d2->StatsOf("shared").driving);
  d1->Shutdown();
  WaitFor([&] { return d2->StatsOf("shared").driving; }, absl::Seconds(2));
  Append(2);
  ASSERT_TRUE(rx.WaitForCount(5));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(rx.count(), 5u);
}

TEST(RetryDelay, ScheduleReachesHours) {
  absl::Duration total;
  std::vector<absl::Duration> got;
  for (int attempt = 1; attempt < 10; ++attempt) {
    got.push_back(RetryDelay(attempt, absl::ZeroDuration(), 0.5));
    total += got.back();
  }
  EXPECT_EQ(got[0], absl::Seconds(5));
  EXPECT_EQ(got[1], absl::Seconds(15));
  EXPECT_EQ(got[6], absl::Seconds(3645));
  EXPECT_EQ(got[8], absl::Hours(6));  // capped
  EXPECT_GT(total, absl::Hours(10));
  EXPECT_LT(total, absl::Hours(11));
  // Jitter stays within 20 %.
  EXPECT_EQ(RetryDelay(1, absl::ZeroDuration(), 0.0), absl::Seconds(4));
  EXPECT_GT(RetryDelay(1, absl::ZeroDuration(), 0.999), absl::Milliseconds(5990));
  EXPECT_LT(RetryDelay(1, absl::ZeroDuration(), 0.999), absl::Seconds(6));
  // Retry-After, when longer, wins; capped at the schedule's max.
  EXPECT_EQ(RetryDelay(1, absl::Minutes(10), 0.5), absl::Minutes(10));
  EXPECT_EQ(RetryDelay(1, absl::Hours(100), 0.5), absl::Hours(6));
}

}  // namespace
}  // namespace uploadbroker::deliver
