// NatsTarget against a real `nats-server -js` on loopback: what a backend
// reading the stream sees, what the driver is told, and refused configs.
#include "deliver/nats_target.h"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/deliver/nats_stream.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/refused_port.h"

namespace uploadbroker::deliver {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Pair;
using uploadbroker::testing::JetStreamClient;
using uploadbroker::testing::NatsServer;
using uploadbroker::testing::StoredMessage;

constexpr char kStream[] = "UPLOADS";
constexpr char kSubject[] = "uploads.events";

CloudEvent Event(const std::string& upload, uint64_t sequence, const std::string& key = "a/b.jpg") {
  CloudEvent e;
  e.id = upload + ".completed";
  e.source = "urn:upload-broker";
  e.type = "com.uploadbroker.upload.completed";
  e.subject = key;
  e.time = absl::FromUnixMillis(1765155600123);  // 2025-12-08T01:00:00.123Z
  e.sequence = sequence;
  e.data = absl::StrCat(R"({"cursor":")", sequence, R"(","upload":")", upload, R"("})");
  return e;
}

// Collects outcomes of Deliver calls.
class Outcomes {
 public:
  std::function<void(AttemptOutcome)> Callback() {
    return [this](AttemptOutcome o) {
      absl::MutexLock l(&mu_);
      got_.push_back(std::move(o));
    };
  }
  // Waits for `n` outcomes in all (at most `deadline`), returns them.
  std::vector<AttemptOutcome> Wait(size_t n, absl::Duration deadline = absl::Seconds(20)) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return got_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), deadline);
    return got_;
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return got_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<AttemptOutcome> got_ ABSL_GUARDED_BY(mu_);
};

// Delivers `event` and waits for its outcome.
AttemptOutcome DeliverOne(NatsTarget& target, CloudEvent event) {
  Outcomes outcomes;
  target.Deliver({std::move(event)}, outcomes.Callback());
  std::vector<AttemptOutcome> got = outcomes.Wait(1, absl::Seconds(30));
  if (got.empty()) return AttemptOutcome{AttemptOutcome::kFailed, "test: no outcome within 30s"};
  return got[0];
}

NatsTargetOptions Options(const NatsServer& server) {
  NatsTargetOptions o;
  o.url = server.url();
  o.subject = kSubject;
  o.timeout = absl::Seconds(2);
  o.name = "test";
  return o;
}

class NatsTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ASSERT_TRUE(client_.Connect(server_.url()).ok());
    ASSERT_TRUE(client_.AddStream(kStream, "uploads.>").ok());
  }

  std::unique_ptr<NatsTarget> NewTarget(NatsTargetOptions o) {
    absl::StatusOr<std::unique_ptr<NatsTarget>> t = NatsTarget::Create(std::move(o));
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }

  std::vector<StoredMessage> Stored() {
    absl::StatusOr<std::vector<StoredMessage>> m = client_.Messages(kStream);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *m : std::vector<StoredMessage>{};
  }

  NatsServer server_;
  JetStreamClient client_;
};

TEST_F(NatsTargetTest, StreamReceivesEachEventWithCloudEventsHeaders) {
  auto target = NewTarget(Options(server_));
  ASSERT_NE(target, nullptr);
  EXPECT_EQ(target->max_batch(), 1);
  Outcomes outcomes;
  for (int i = 1; i <= 3; ++i) target->Deliver({Event(absl::StrCat("u", i), i)}, outcomes.Callback());
  std::vector<AttemptOutcome> got = outcomes.Wait(3);
  ASSERT_EQ(got.size(), 3u);
  for (const AttemptOutcome& o : got) EXPECT_EQ(o.kind, AttemptOutcome::kDelivered) << o.reason;

  // One connection, published in Deliver order: the stream holds them so.
  std::vector<StoredMessage> stored = Stored();
  ASSERT_EQ(stored.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(stored[i].headers.at("ce-id"), absl::StrCat("u", i + 1, ".completed"));
  const StoredMessage& m = stored[1];
  const CloudEvent sent = Event("u2", 2);
  EXPECT_EQ(m.subject, kSubject);
  EXPECT_EQ(m.data, sent.data);
  EXPECT_THAT(m.headers, AllOf(::testing::Contains(Pair("Nats-Msg-Id", sent.id)),
                               ::testing::Contains(Pair("ce-specversion", "1.0")),
                               ::testing::Contains(Pair("ce-source", "urn:upload-broker")),
                               ::testing::Contains(Pair("ce-type", "com.uploadbroker.upload.completed")),
                               ::testing::Contains(Pair("ce-subject", "a/b.jpg")),
                               ::testing::Contains(Pair("ce-time", "2025-12-08T01:00:00.123Z")),
                               ::testing::Contains(Pair("ce-sequence", "2")),
                               ::testing::Contains(Pair("content-type", "application/json"))));
}

TEST_F(NatsTargetTest, HostileObjectKeyIsPercentEncodedAndCannotForgeHeaders) {
  auto target = NewTarget(Options(server_));
  ASSERT_NE(target, nullptr);
  const std::string key = "x\r\nNats-Msg-Id: forged\r\n\r\nbody \"100%\" \xC3\xA9";
  EXPECT_EQ(DeliverOne(*target, Event("u1", 1, key)).kind, AttemptOutcome::kDelivered);
  std::vector<StoredMessage> stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].headers.at("ce-subject"),
            "x%0D%0ANats-Msg-Id:%20forged%0D%0A%0D%0Abody%20%22100%25%22%20%C3%A9");
  EXPECT_EQ(stored[0].headers.at("Nats-Msg-Id"), "u1.completed");
  EXPECT_EQ(stored[0].data, Event("u1", 1).data);
}

TEST_F(NatsTargetTest, RetryOfTheSameEventIsDeduplicatedByJetStream) {
  auto target = NewTarget(Options(server_));
  ASSERT_NE(target, nullptr);
  // The driver retries an event whose ack it did not see: both attempts
  // count as delivered, the stream keeps one message.
  EXPECT_EQ(DeliverOne(*target, Event("u1", 1)).kind, AttemptOutcome::kDelivered);
  EXPECT_EQ(DeliverOne(*target, Event("u1", 1)).kind, AttemptOutcome::kDelivered);
  EXPECT_EQ(DeliverOne(*target, Event("u2", 2)).kind, AttemptOutcome::kDelivered);
  std::vector<StoredMessage> stored = Stored();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].headers.at("ce-id"), "u1.completed");
  EXPECT_EQ(stored[1].headers.at("ce-id"), "u2.completed");
}

TEST_F(NatsTargetTest, ManyAttemptsInFlightEachStoredOnceAndRetriesAllDeduplicated) {
  NatsTargetOptions o = Options(server_);
  o.max_in_flight = 64;
  auto target = NewTarget(o);
  ASSERT_NE(target, nullptr);
  constexpr int kEvents = 2000;
  for (int round = 0; round < 2; ++round) {  // the second round: every event again
    Outcomes outcomes;
    for (int i = 0; i < kEvents; ++i) {
      target->Deliver({Event(absl::StrCat("u", i), i + 1)}, outcomes.Callback());
    }
    std::vector<AttemptOutcome> got = outcomes.Wait(kEvents, absl::Seconds(60));
    ASSERT_EQ(got.size(), static_cast<size_t>(kEvents));
    int delivered = 0;
    for (const AttemptOutcome& g : got) delivered += g.kind == AttemptOutcome::kDelivered;
    EXPECT_EQ(delivered, kEvents) << "round " << round;
    EXPECT_EQ(client_.Count(kStream).value_or(0), static_cast<uint64_t>(kEvents)) << "round " << round;
  }
}

TEST_F(NatsTargetTest, SubjectNoStreamCapturesFailsWithReason) {
  NatsTargetOptions o = Options(server_);
  o.subject = "elsewhere.events";
  auto target = NewTarget(o);
  ASSERT_NE(target, nullptr);
  AttemptOutcome got = DeliverOne(*target, Event("u1", 1));
  EXPECT_EQ(got.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(got.reason, "no JetStream stream captures subject elsewhere.events (no responders)");
}

TEST_F(NatsTargetTest, AckFromAnotherStreamThanConfiguredFails) {
  NatsTargetOptions o = Options(server_);
  o.stream = "OTHER";
  auto target = NewTarget(o);
  ASSERT_NE(target, nullptr);
  AttemptOutcome got = DeliverOne(*target, Event("u1", 1));
  EXPECT_EQ(got.kind, AttemptOutcome::kFailed);
  EXPECT_THAT(got.reason, HasSubstr("expected stream does not match"));
  EXPECT_EQ(client_.Count(kStream).value_or(99), 0u);

  o.stream = kStream;
  auto right = NewTarget(o);
  ASSERT_NE(right, nullptr);
  EXPECT_EQ(DeliverOne(*right, Event("u1", 1)).kind, AttemptOutcome::kDelivered);
}

TEST_F(NatsTargetTest, NoAckWithinTimeoutFails) {
  // A plain subscriber on the subject answers nothing: the publish is seen,
  // no PubAck comes.
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, client_.connection(), "silent.events"), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(client_.connection()), NATS_OK);
  NatsTargetOptions o = Options(server_);
  o.subject = "silent.events";
  o.timeout = absl::Milliseconds(300);
  auto target = NewTarget(o);
  ASSERT_NE(target, nullptr);
  const auto start = std::chrono::steady_clock::now();
  AttemptOutcome got = DeliverOne(*target, Event("u1", 1));
  EXPECT_EQ(got.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(got.reason, "no JetStream ack within 300ms");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  natsSubscription_Destroy(sub);
}

TEST_F(NatsTargetTest, EventLargerThanServerMaxPayloadFails) {
  auto target = NewTarget(Options(server_));
  ASSERT_NE(target, nullptr);
  CloudEvent huge = Event("u1", 1);
  huge.data.assign(2 << 20, 'x');  // the server's default max_payload is 1 MiB
  AttemptOutcome got = DeliverOne(*target, huge);
  EXPECT_EQ(got.kind, AttemptOutcome::kFailed);
  EXPECT_THAT(got.reason, HasSubstr("publish failed"));
  // The connection is still good for the next event.
  EXPECT_EQ(DeliverOne(*target, Event("u2", 2)).kind, AttemptOutcome::kDelivered);
  EXPECT_EQ(client_.Count(kStream).value_or(99), 1u);
}

TEST_F(NatsTargetTest, ServerDownFailsWithReasonThenDeliversWhenItIsBack) {
  auto target = NewTarget(Options(server_));
  ASSERT_NE(target, nullptr);
  ASSERT_EQ(DeliverOne(*target, Event("u1", 1)).kind, AttemptOutcome::kDelivered);

  server_.Stop();  // SIGKILL
  // Attempts while it is down fail, each with a reason, and Deliver never
  // waits for the network.
  std::vector<AttemptOutcome> failures;
  for (int i = 0; i < 10; ++i) {
    Outcomes outcomes;
    const auto before = std::chrono::steady_clock::now();
    target->Deliver({Event("u2", 2)}, outcomes.Callback());
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(50));
    std::vector<AttemptOutcome> got = outcomes.Wait(1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].kind, AttemptOutcome::kFailed);
    failures.push_back(got[0]);
  }
  for (const AttemptOutcome& f : failures) {
    EXPECT_THAT(f.reason, AnyOf("not connected to NATS (reconnecting)", "no JetStream ack within 2s"));
  }
  EXPECT_EQ(failures.back().reason, "not connected to NATS (reconnecting)");
  EXPECT_FALSE(target->connected());

  ASSERT_TRUE(server_.Start().ok());  // same port, same store: the stream is back
  AttemptOutcome last;
  for (int i = 0; i < 100 && last.kind != AttemptOutcome::kDelivered; ++i) {
    last = DeliverOne(*target, Event("u2", 2));
    if (last.kind != AttemptOutcome::kDelivered) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(last.kind, AttemptOutcome::kDelivered) << last.reason;
  EXPECT_TRUE(target->connected());
  JetStreamClient after;
  ASSERT_TRUE(after.Connect(server_.url()).ok());
  absl::StatusOr<std::vector<StoredMessage>> stored = after.Messages(kStream);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 2u);  // u2 once, however many attempts reached the server
  EXPECT_EQ((*stored)[1].headers.at("ce-id"), "u2.completed");
}

TEST(NatsTargetStartTest, ServerNotYetRunningFailsThenDelivers) {
  int port = 0;
  {
    uploadbroker::testing::RefusedPort refused;
    port = refused.port();
  }
  NatsServer server(port);
  NatsTargetOptions o;
  o.url = absl::StrCat("nats://127.0.0.1:", port);
  o.subject = kSubject;
  o.timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<NatsTarget>> target = NatsTarget::Create(o);
  ASSERT_TRUE(target.ok()) << target.status();  // Create does not need the server
  AttemptOutcome got = DeliverOne(**target, Event("u1", 1));
  EXPECT_EQ(got.kind, AttemptOutcome::kFailed);
  EXPECT_EQ(got.reason, "not connected to NATS (reconnecting)");

  ASSERT_TRUE(server.Start().ok());
  JetStreamClient client;
  ASSERT_TRUE(client.Connect(server.url()).ok());
  ASSERT_TRUE(client.AddStream(kStream, "uploads.>").ok());
  for (int i = 0; i < 100 && got.kind != AttemptOutcome::kDelivered; ++i) {
    got = DeliverOne(**target, Event("u1", 1));
    if (got.kind != AttemptOutcome::kDelivered) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(got.kind, AttemptOutcome::kDelivered) << got.reason;
  EXPECT_EQ(client.Count(kStream).value_or(99), 1u);
}

TEST_F(NatsTargetTest, DestructorCancelsAttemptsInFlightAndReturnsPromptly) {
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&sub, client_.connection(), "silent.events"), NATS_OK);
  ASSERT_EQ(natsConnection_Flush(client_.connection()), NATS_OK);
  NatsTargetOptions o = Options(server_);
  o.subject = "silent.events";
  o.timeout = absl::Seconds(30);
  auto outcomes = std::make_shared<Outcomes>();
  auto target = NewTarget(o);
  ASSERT_NE(target, nullptr);
  for (int i = 0; i < 50; ++i) target->Deliver({Event(absl::StrCat("u", i), i)}, outcomes->Callback());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // some are in flight by now
  const auto start = std::chrono::steady_clock::now();
  target.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(outcomes->size(), 0u);
  natsSubscription_Destroy(sub);
}

TEST(NatsTargetConfigTest, BadConfigIsRefusedWithTheFieldNamed) {
  auto refused = [](auto change) {
    NatsTargetOptions o;
    o.url = "nats://127.0.0.1:4222";
    o.subject = "uploads.events";
    change(o);
    absl::StatusOr<std::unique_ptr<NatsTarget>> t = NatsTarget::Create(o);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(t.status().message());
  };
  EXPECT_EQ(refused([](auto& o) { o.url = ""; }), "url: required (nats://host:port)");
  EXPECT_EQ(refused([](auto& o) { o.url = "http://127.0.0.1:4222"; }),
            "url (server 1): must start with nats://");
  EXPECT_EQ(refused([](auto& o) { o.url = "tls://127.0.0.1:4222"; }),
            "url (server 1): tls:// is not supported by the NATS target yet (nats:// only)");
  EXPECT_EQ(refused([](auto& o) { o.url = "nats://a:4222,127.0.0.1:4222"; }),
            "url (server 2): must start with nats://");
  EXPECT_EQ(refused([](auto& o) { o.url = "nats://"; }),
            "url (server 1): not a valid nats:// URL (host, optional port)");
  EXPECT_EQ(refused([](auto& o) { o.url = "nats://127.0.0.1:99999"; }),
            "url (server 1): not a valid nats:// URL (host, optional port)");
  EXPECT_EQ(refused([](auto& o) { o.url = "nats://127.0.0.1:4222/x?y"; }),
            "url (server 1): a NATS URL has no path, query or fragment");
  EXPECT_EQ(refused([](auto& o) { o.url = "nats://bad host:4222"; }),
            "url (server 1): not a valid nats:// URL (host, optional port)");
  EXPECT_EQ(refused([](auto& o) { o.subject = ""; }), "subject: required");
  EXPECT_EQ(refused([](auto& o) { o.subject = "uploads..events"; }),
            "subject: empty token (\"..\" or a '.' at an end)");
  EXPECT_EQ(refused([](auto& o) { o.subject = "uploads."; }),
            "subject: empty token (\"..\" or a '.' at an end)");
  EXPECT_EQ(refused([](auto& o) { o.subject = "uploads.*"; }),
            "subject: wildcards ('*', '>') cannot be published to");
  EXPECT_EQ(refused([](auto& o) { o.subject = "uploads.>"; }),
            "subject: wildcards ('*', '>') cannot be published to");
  EXPECT_EQ(refused([](auto& o) { o.subject = "uploads events"; }),
            "subject: only printable ASCII without spaces (tokens separated by '.')");
  EXPECT_EQ(refused([](auto& o) { o.subject = "uploads\r\n"; }),
            "subject: only printable ASCII without spaces (tokens separated by '.')");
  EXPECT_EQ(refused([](auto& o) { o.subject = std::string(10000, 'a'); }),
            "subject: longer than 255 bytes");
  EXPECT_THAT(refused([](auto& o) { o.stream = "UP.LOADS"; }), HasSubstr("stream: "));
  EXPECT_EQ(refused([](auto& o) { o.timeout = absl::ZeroDuration(); }),
            "timeout: must be between 1ms and 1h");
  EXPECT_EQ(refused([](auto& o) { o.max_in_flight = 0; }),
            "max_in_flight: must be between 1 and 100000");

  NatsTargetOptions good;
  good.url = "nats://user:secret@127.0.0.1:4222, nats://localhost";
  good.subject = "uploads.events";
  good.stream = "UPLOADS";
  EXPECT_TRUE(NatsTarget::Validate(good).ok()) << NatsTarget::Validate(good);
}

}  // namespace
}  // namespace uploadbroker::deliver
