// http::Server limits and lifecycle: oversize bodies and headers, malformed
// requests, slow clients, the connection cap, drain on shutdown, bind
// conflicts and bad options.
#include "http/server.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/raw_client.h"
#include "tests/http/server_fixture.h"


namespace uploadbroker::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

TEST(ServerTest, OversizeBodyGets413WithoutReachingHandler) {
  Recorder recorder;
  ServerOptions options;
  options.max_body_bytes = 1024;
  options.on_reject = recorder.on_reject();
  auto server = Start(options, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(
      client->Send(absl::StrCat("POST /cb HTTP/1.1\r\nHost: t\r\n"
                                "Content-Length: 4096\r\n\r\n",
                                std::string(4096, 'x'))));
  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 413);
  EXPECT_EQ(reply->body,
            R"({"error":"body_too_large","reason":"body exceeds 1024 bytes"})");
  EXPECT_TRUE(reply->Header("Content-Length").has_value());
  EXPECT_TRUE(client->ReadsEof());
  EXPECT_TRUE(recorder.requests().empty());
  EXPECT_THAT(recorder.rejects(), ElementsAre("body_too_large"));
}

TEST(ServerTest, HugeHeadersGet431) {
  Recorder recorder;
  ServerOptions options;
  options.on_reject = recorder.on_reject();
  auto server = Start(options, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(
      Get("/", absl::StrCat("X-Big: ", std::string(10000, 'a'), "\r\n"))));
  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 431);
  EXPECT_THAT(reply->body, HasSubstr("headers_too_large"));
  EXPECT_TRUE(client->ReadsEof());
  EXPECT_TRUE(recorder.requests().empty());
}

TEST(ServerTest, MalformedRequestGets400) {
  Recorder recorder;
  ServerOptions options;
  options.on_reject = recorder.on_reject();
  auto server = Start(options, recorder.handler());
  for (const char* garbage :
       {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        "HELLO\x01 / HTTP/1.1\r\n\r\n", "GET / HTTP/9.x\r\n\r\n"}) {
    auto client = RawClient::Connect(server->port());
    ASSERT_TRUE(client->Send(garbage));
    std::optional<Reply> reply = client->ReadResponse();
    ASSERT_TRUE(reply.has_value()) << garbage;
    EXPECT_EQ(reply->status, 400) << garbage;
    EXPECT_THAT(reply->body, HasSubstr(R"("error":"malformed")"));
    EXPECT_TRUE(client->ReadsEof());
  }
  EXPECT_TRUE(recorder.requests().empty());
  EXPECT_THAT(recorder.rejects(),
              ElementsAre("malformed", "malformed", "malformed"));
}

TEST(ServerTest, SlowDripIsCutWhileOtherClientsAreServed) {
  Recorder recorder;
  ServerOptions options;
  options.threads = 1;  // one thread: only async I/O keeps others served
  options.read_timeout = absl::Seconds(3);
  options.on_reject = recorder.on_reject();
  auto server = Start(options, recorder.handler());

  absl::Notification dripping;
  absl::Notification slow_answered;
  std::optional<Reply> slow_reply;
  absl::Duration slow_elapsed;
  std::thread slow([&] {
    // The first request's deadline counts from the accept, which follows
    // the connect: start the clock before it.
    const absl::Time start = absl::Now();
    auto client = RawClient::Connect(server->port());
    const std::string request =
        "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    for (size_t i = 0; i < request.size(); ++i) {
      if (!client->Send(request.substr(i, 1))) break;
      if (i == 1) dripping.Notify();
      if (client->Readable(absl::Milliseconds(200))) break;
    }
    slow_reply = client->ReadResponse(absl::Seconds(60));
    slow_elapsed = absl::Now() - start;
    slow_answered.Notify();
  });

  ASSERT_TRUE(dripping.WaitForNotificationWithTimeout(absl::Seconds(60)));
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/fast")));
  std::optional<Reply> reply = client->ReadResponse(absl::Seconds(60));
  // Served while the slow client was still being waited for: no wall-clock
  // bound, just the order of the two events.
  const bool slow_still_pending = !slow_answered.HasBeenNotified();
  slow.join();

  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "/fast");
  EXPECT_TRUE(slow_still_pending) << "/fast waited for the slow client's timeout";
  ASSERT_TRUE(slow_reply.has_value());
  EXPECT_EQ(slow_reply->status, 408);
  // Never before the limit (a timer fires no earlier than asked); the upper
  // bound only says it did time out rather than hang.
  EXPECT_GE(slow_elapsed, options.read_timeout);
  EXPECT_LT(slow_elapsed, options.read_timeout + absl::Seconds(30));
  EXPECT_THAT(recorder.rejects(), ElementsAre("read_timeout"));
  ASSERT_EQ(recorder.requests().size(), 1u);  // only /fast
}

TEST(ServerTest, ConnectionOverCapGets503) {
  Recorder recorder;
  ServerOptions options;
  options.max_connections = 2;
  options.on_reject = recorder.on_reject();
  auto server = Start(options, recorder.handler());
  auto first = RawClient::Connect(server->port());
  auto second = RawClient::Connect(server->port());
  for (RawClient* client : {first.get(), second.get()}) {  // both admitted
    ASSERT_TRUE(client->Send(Get("/")));
    ASSERT_THAT(client->ReadResponse(),
                Optional(testing::Field(&Reply::status, 200)));
  }

  auto third = RawClient::Connect(server->port());
  ASSERT_NE(third, nullptr);
  third->Send(Get("/"));
  std::optional<Reply> reply = third->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 503);
  EXPECT_THAT(reply->body, HasSubstr("over_capacity"));
  EXPECT_TRUE(third->ReadsEof());
  EXPECT_THAT(recorder.rejects(), ElementsAre("over_capacity"));

  // A freed slot is usable again (the server notices the close
  // asynchronously and has no event to wait on, so retry until a generous
  // deadline).
  first.reset();
  int status = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (status != 200 && absl::Now() < deadline) {
    auto next = RawClient::Connect(server->port());
    next->Send(Get("/again"));
    std::optional<Reply> again = next->ReadResponse();
    status = again.has_value() ? again->status : 0;
    if (status != 200) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(status, 200);
}

TEST(ServerTest, ShutdownLetsInFlightRequestFinish) {
  absl::Notification got;
  Responder pending;
  auto server = Start({}, [&](Request request, Responder respond) {
    if (request.target == "/slow") {
      pending = std::move(respond);
      got.Notify();
    } else {
      respond({200, "text/plain", "quick", {}});
    }
  });
  auto idle = RawClient::Connect(server->port());
  ASSERT_TRUE(idle->Send(Get("/quick")));
  ASSERT_TRUE(idle->ReadResponse().has_value());
  auto busy = RawClient::Connect(server->port());
  ASSERT_TRUE(busy->Send(Get("/slow")));
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(60)));

  std::thread shutdown([&] { server->Shutdown(); });
  EXPECT_TRUE(idle->ReadsEof());  // draining closed the idle connection...
  pending({200, "text/plain", "finished", {}});  // ...but not the busy one
  std::optional<Reply> reply = busy->ReadResponse();
  EXPECT_TRUE(busy->ReadsEof());
  busy.reset();  // as OSS does once answered; Shutdown need not linger
  shutdown.join();

  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "finished");
  EXPECT_THAT(reply->Header("Connection"), Optional(std::string("close")));
  EXPECT_EQ(RawClient::Connect(server->port()), nullptr);  // not listening
}

TEST(ServerTest, ResponderCalledAfterServerIsGoneDoesNothing) {
  absl::Notification got;
  Responder pending;
  ServerOptions options;
  options.shutdown_grace = absl::Milliseconds(100);
  auto server = Start(options, [&](Request, Responder respond) {
    pending = std::move(respond);
    got.Notify();
  });
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/")));
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(60)));
  server.reset();
  pending({200, "text/plain", "too late", {}});
  EXPECT_TRUE(client->ReadsEof());
}

TEST(ServerTest, BindConflictIsUnavailable) {
  auto first = Start({}, [](Request, Responder) {});
  ServerOptions options;
  options.listen = absl::StrCat("127.0.0.1:", first->port());
  auto second = Server::Create(options, [](Request, Responder) {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("bind"));
}

TEST(ServerTest, BadOptionsAreInvalidArgument) {
  ServerOptions options;
  options.threads = 0;
  EXPECT_EQ(Server::Create(options, [](Request, Responder) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = ServerOptions();
  options.listen = "nonsense";
  EXPECT_EQ(Server::Create(options, [](Request, Responder) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace uploadbroker::http
