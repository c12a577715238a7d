#include "http/server.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/raw_client.h"

namespace uploadbroker::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

std::string Get(absl::string_view target, absl::string_view extra = "") {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: t\r\n", extra,
                      "\r\n");
}

// Answers 200 with the target as body; records what it saw.
class Recorder {
 public:
  Handler handler() {
    return [this](Request request, Responder respond) {
      Response response;
      response.content_type = "text/plain";
      response.body = request.target;
      {
        absl::MutexLock lock(&mu_);
        requests_.push_back(std::move(request));
      }
      respond(std::move(response));
    };
  }
  std::vector<Request> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::function<void(absl::string_view)> on_reject() {
    return [this](absl::string_view reason) {
      absl::MutexLock lock(&mu_);
      rejects_.emplace_back(reason);
    };
  }
  std::vector<std::string> rejects() {
    absl::MutexLock lock(&mu_);
    return rejects_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> rejects_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<Server> Start(ServerOptions options, Handler handler) {
  auto server = Server::Create(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

TEST(ServerTest, PostReachesHandlerRawAndAnswerHasContentLength) {
  common::FakeClock clock(absl::FromUnixSeconds(1700000000));
  Request seen;
  ServerOptions options;
  options.clock = &clock;
  auto server = Start(options, [&](Request request, Responder respond) {
    seen = std::move(request);
    respond(
        {201, "application/json", R"({"Status":"OK"})", {{"X-Trace", "t1"}}});
  });
  const std::string body = "bucket=b&object=a%2Fb+c&size=5";
  auto client = RawClient::Connect(server->port());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Send(absl::StrCat(
      "POST /oss/cb%2Fx?a=1&b=%2F+c&&z HTTP/1.1\r\nHost: broker\r\n"
      "Authorization: c2ln\r\nContent-Type: "
      "application/x-www-form-urlencoded\r\n"
      "Content-Length: ",
      body.size(), "\r\n\r\n", body)));

  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 201);
  EXPECT_EQ(reply->body, R"({"Status":"OK"})");
  EXPECT_THAT(reply->Header("Content-Length"), Optional(std::string("15")));
  EXPECT_THAT(reply->Header("Content-Type"),
              Optional(std::string("application/json")));
  EXPECT_THAT(reply->Header("X-Trace"), Optional(std::string("t1")));
  EXPECT_EQ(reply->Header("Transfer-Encoding"), std::nullopt);

  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/oss/cb%2Fx?a=1&b=%2F+c&&z");
  EXPECT_EQ(seen.path_raw, "/oss/cb%2Fx");
  EXPECT_EQ(seen.query_raw, "a=1&b=%2F+c&&z");
  EXPECT_EQ(seen.body, body);
  EXPECT_EQ(seen.Header("authorization"), "c2ln");
  EXPECT_EQ(seen.Header("x-missing"), "");
  EXPECT_EQ(seen.headers.front().first, "Host");
  EXPECT_THAT(seen.peer, HasSubstr("127.0.0.1:"));
  EXPECT_EQ(seen.received_at, absl::FromUnixSeconds(1700000000));
}

TEST(ServerTest, HandlerMayAnswerLaterFromAnotherThread) {
  absl::Notification got;
  Responder pending;
  auto server = Start({}, [&](Request, Responder respond) {
    pending = std::move(respond);
    got.Notify();
  });
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/later")));
  got.WaitForNotification();
  EXPECT_FALSE(client->Readable(absl::Milliseconds(50)));  // not answered yet
  std::thread([&] { pending({200, "text/plain", "late", {}}); }).join();

  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "late");
}

TEST(ServerTest, DroppedResponderAnswers500) {
  auto server = Start({}, [](Request, Responder) {});
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/")));
  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 500);
}

TEST(ServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  Recorder recorder;
  auto server = Start({}, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/one")));
  EXPECT_THAT(client->ReadResponse(),
              Optional(testing::Field(&Reply::body, "/one")));
  ASSERT_TRUE(client->Send(Get("/two")));
  EXPECT_THAT(client->ReadResponse(),
              Optional(testing::Field(&Reply::body, "/two")));
  std::vector<Request> seen = recorder.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].peer, seen[1].peer);  // same connection
}

TEST(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Recorder recorder;
  auto server = Start({}, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/a") + Get("/b") + Get("/c")));
  for (const char* target : {"/a", "/b", "/c"}) {
    EXPECT_THAT(client->ReadResponse(),
                Optional(testing::Field(&Reply::body, target)));
  }
}

TEST(ServerTest, ConnectionCloseIsHonoured) {
  Recorder recorder;
  auto server = Start({}, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/", "Connection: close\r\n")));
  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_THAT(reply->Header("Connection"), Optional(std::string("close")));
  EXPECT_TRUE(client->ReadsEof());
}

// Bytes after a Connection: close request make the server linger (read and
// discard) instead of closing at once, so the close cannot reset the
// connection before the client has read its answer.
TEST(ServerTest, BytesAfterAClosingRequestDoNotCostTheAnswer) {
  Recorder recorder;
  auto server = Start({}, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/last", "Connection: close\r\n") +
                           Get("/ignored") + std::string(100000, 'x')));
  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "/last");
  EXPECT_THAT(reply->Header("Connection"), Optional(std::string("close")));
  EXPECT_TRUE(client->ReadsEof());
  EXPECT_EQ(recorder.requests().size(), 1u);
}

// An answer larger than the socket takes at once is finished asynchronously.
TEST(ServerTest, LargeAnswerIsWrittenCompletely) {
  const std::string big(8 << 20, 'b');
  auto server = Start({}, [&big](Request, Responder respond) {
    respond({200, "text/plain", big, {}});
  });
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/big")));
  std::optional<Reply> reply = client->ReadResponse(absl::Seconds(20));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body.size(), big.size());
  EXPECT_EQ(reply->body, big);
  // Still usable afterwards (keep-alive).
  ASSERT_TRUE(client->Send(Get("/again")));
  EXPECT_TRUE(client->ReadResponse(absl::Seconds(20)).has_value());
}

// Each event loop has its own acceptor on the one port: many connections
// at once, new and kept alive, are all served.
TEST(ServerTest, ManyConcurrentConnectionsAreServedAcrossLoops) {
  Recorder recorder;
  ServerOptions options;
  options.threads = 3;
  auto server = Start(options, recorder.handler());
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(RawClient::Connect(server->port()));
    ASSERT_NE(clients.back(), nullptr);
    ASSERT_TRUE(clients.back()->Send(Get(absl::StrCat("/c", i))));
  }
  for (int i = 0; i < 40; ++i) {
    EXPECT_THAT(clients[i]->ReadResponse(),
                Optional(testing::Field(&Reply::body, absl::StrCat("/c", i))));
  }
  EXPECT_EQ(recorder.requests().size(), 40u);
}

TEST(ServerTest, Http10KeepsAliveOnlyWhenAsked) {
  Recorder recorder;
  auto server = Start({}, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(
      client->Send("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  std::optional<Reply> reply = client->ReadResponse();
  ASSERT_TRUE(reply.has_value());
  EXPECT_THAT(reply->head, testing::StartsWith("HTTP/1.0 200"));
  EXPECT_THAT(reply->Header("Content-Length"), Optional(std::string("2")));
  ASSERT_TRUE(client->Send("GET /c HTTP/1.0\r\n\r\n"));
  EXPECT_THAT(client->ReadResponse(),
              Optional(testing::Field(&Reply::body, "/c")));
  EXPECT_TRUE(client->ReadsEof());
}

TEST(ServerTest, HeadAnswerHasLengthButNoBody) {
  Recorder recorder;
  auto server = Start({}, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(
      client->Send("HEAD /four HTTP/1.1\r\nHost: t\r\n\r\n" + Get("/x")));
  std::optional<Reply> head = client->ReadResponse(absl::Seconds(5), true);
  ASSERT_TRUE(head.has_value());
  EXPECT_THAT(head->Header("Content-Length"), Optional(std::string("5")));
  // The next answer starts right after the headers: no stray body bytes.
  EXPECT_THAT(client->ReadResponse(),
              Optional(testing::Field(&Reply::body, "/x")));
}

TEST(ServerTest, IdleKeepAliveConnectionIsClosed) {
  Recorder recorder;
  ServerOptions options;
  options.idle_timeout = absl::Milliseconds(200);
  auto server = Start(options, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/")));
  ASSERT_TRUE(client->ReadResponse().has_value());
  EXPECT_TRUE(client->ReadsEof(absl::Seconds(2)));
  EXPECT_TRUE(recorder.rejects().empty());  // idle close is not a rejection
}

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
  options.read_timeout = absl::Seconds(1);
  options.on_reject = recorder.on_reject();
  auto server = Start(options, recorder.handler());

  absl::Notification dripping;
  std::optional<Reply> slow_reply;
  absl::Duration slow_elapsed;
  std::thread slow([&] {
    auto client = RawClient::Connect(server->port());
    const std::string request =
        "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    const absl::Time start = absl::Now();
    for (size_t i = 0; i < request.size(); ++i) {
      if (!client->Send(request.substr(i, 1))) break;
      if (i == 1) dripping.Notify();
      if (client->Readable(absl::Milliseconds(200))) break;
    }
    slow_reply = client->ReadResponse();
    slow_elapsed = absl::Now() - start;
  });

  dripping.WaitForNotification();
  const absl::Time start = absl::Now();
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/fast")));
  std::optional<Reply> reply = client->ReadResponse();
  const absl::Duration fast_elapsed = absl::Now() - start;
  slow.join();

  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "/fast");
  EXPECT_LT(fast_elapsed, absl::Milliseconds(500));
  ASSERT_TRUE(slow_reply.has_value());
  EXPECT_EQ(slow_reply->status, 408);
  EXPECT_GE(slow_elapsed, absl::Milliseconds(900));
  EXPECT_LT(slow_elapsed, absl::Milliseconds(2500));
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
  // asynchronously, so allow it a few tries).
  first.reset();
  int status = 0;
  for (int attempt = 0; attempt < 50 && status != 200; ++attempt) {
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
  got.WaitForNotification();

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
  got.WaitForNotification();
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
