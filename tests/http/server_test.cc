// http::Server serving: requests reach the handler raw, answers are framed
// right, keep-alive, pipelining, HTTP/1.0, HEAD, many connections across loops.
#include "http/server.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "tests/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/raw_client.h"
#include "tests/http/server_fixture.h"


namespace uploadbroker::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

TEST(ServerTest, PostReachesHandlerRawAndAnswerHasContentLength) {
  testing::FakeClock clock(absl::FromUnixSeconds(1700000000));
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
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(60)));
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
              Optional(::testing::Field(&Reply::body, "/one")));
  ASSERT_TRUE(client->Send(Get("/two")));
  EXPECT_THAT(client->ReadResponse(),
              Optional(::testing::Field(&Reply::body, "/two")));
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
                Optional(::testing::Field(&Reply::body, target)));
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
                Optional(::testing::Field(&Reply::body, absl::StrCat("/c", i))));
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
  EXPECT_THAT(reply->head, ::testing::StartsWith("HTTP/1.0 200"));
  EXPECT_THAT(reply->Header("Content-Length"), Optional(std::string("2")));
  ASSERT_TRUE(client->Send("GET /c HTTP/1.0\r\n\r\n"));
  EXPECT_THAT(client->ReadResponse(),
              Optional(::testing::Field(&Reply::body, "/c")));
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
              Optional(::testing::Field(&Reply::body, "/x")));
}

TEST(ServerTest, IdleKeepAliveConnectionIsClosed) {
  Recorder recorder;
  ServerOptions options;
  options.idle_timeout = absl::Milliseconds(200);
  auto server = Start(options, recorder.handler());
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/")));
  ASSERT_TRUE(client->ReadResponse().has_value());
  EXPECT_TRUE(client->ReadsEof(absl::Seconds(30)));
  EXPECT_TRUE(recorder.rejects().empty());  // idle close is not a rejection
}

}  // namespace
}  // namespace uploadbroker::http
