// http::Server's streamed bodies and file answers (ServerOptions::stream_body,
// Response::file): a chosen request's body reaches its BodySink in pieces and
// never Request::body; other requests still buffer within max_body_bytes; a
// body over the sink's limit is 413, a cut-off one releases the sink without
// Finish; a sink error is 500; a FileBody is sent whole to GET and only as a
// Content-Length to HEAD.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/server.h"
#include "tests/http/raw_client.h"
#include "tests/http/server_fixture.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::http {
namespace {

using ::testing::HasSubstr;

// Collects what it is given; counts the sinks alive.
class MemorySink : public BodySink {
 public:
  MemorySink(uint64_t max, std::atomic<int>* alive, bool fail = false)
      : max_(max), alive_(alive), fail_(fail) {
    ++*alive_;
  }
  ~MemorySink() override { --*alive_; }
  uint64_t max_bytes() const override { return max_; }
  absl::Status Write(absl::string_view piece) override {
    if (fail_) return absl::InternalError("disk full");
    data.append(piece.data(), piece.size());
    ++pieces;
    return absl::OkStatus();
  }
  absl::Status Finish() override {
    finished = true;
    return absl::OkStatus();
  }
  std::string data;
  int pieces = 0;
  bool finished = false;

 private:
  const uint64_t max_;
  std::atomic<int>* const alive_;
  const bool fail_;
};

class StreamTest : public ::testing::Test {
 protected:
  void StartServer() {
    ServerOptions options;
    options.max_body_bytes = 1024;
    options.on_reject = recorder_.on_reject();
    options.stream_body = [this](const Request& head) -> std::shared_ptr<BodySink> {
      if (!absl::StartsWith(head.target, "/stream")) return nullptr;
      return std::make_shared<MemorySink>(1 << 20, &alive_,
                                          absl::StrContains(head.target, "fail"));
    };
    server_ = Start(options, [this](Request request, Responder respond) {
      Response r;
      r.content_type = "text/plain";
      if (auto* sink = dynamic_cast<MemorySink*>(request.body_sink.get())) {
        r.body = absl::StrCat("sink ", sink->data.size(), " finished ", sink->finished,
                              " body ", request.body.size());
      } else {
        r.body = absl::StrCat("memory ", request.body.size());
      }
      respond(std::move(r));
    });
  }
  std::optional<Reply> Send(const std::string& bytes) {
    auto client = RawClient::Connect(server_->port());
    if (!client->Send(bytes)) return std::nullopt;
    return client->ReadResponse();
  }
  static std::string Put(const std::string& target, const std::string& body) {
    return absl::StrCat("PUT ", target, " HTTP/1.1\r\nHost: t\r\nContent-Length: ", body.size(),
                        "\r\n\r\n", body);
  }

  Recorder recorder_;
  std::atomic<int> alive_{0};
  std::unique_ptr<Server> server_;
};

TEST_F(StreamTest, AChosenBodyGoesToItsSinkOthersToMemory) {
  StartServer();
  std::optional<Reply> r = Send(Put("/stream/a", std::string(600000, 'x')));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "sink 600000 finished 1 body 0");
  r = Send(Put("/small", std::string(1000, 'y')));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "memory 1000");
  r = Send(Put("/small", std::string(1025, 'y')));  // max_body_bytes still holds
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  r = Send(absl::StrCat("PUT /stream/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
                        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body, "sink 11 finished 1 body 0");
}

TEST_F(StreamTest, OverTheSinksLimitIs413AndTheSinkIsReleased) {
  StartServer();
  std::optional<Reply> r = Send(absl::StrCat(
      "PUT /stream/big HTTP/1.1\r\nHost: t\r\nContent-Length: ", (1 << 20) + 1, "\r\n\r\nabc"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  std::string chunks;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&chunks, "10000\r\n", std::string(65536, 'z'), "\r\n");
  r = Send(absl::StrCat("PUT /stream/chunky HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
                        chunks, "0\r\n\r\n"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(alive_.load(), 0);
  EXPECT_TRUE(recorder_.requests().empty());
}

TEST_F(StreamTest, ACutOffBodyReleasesTheSinkWithoutFinish) {
  StartServer();
  {
    auto client = RawClient::Connect(server_->port());
    ASSERT_TRUE(client->Send(absl::StrCat(
        "PUT /stream/cut HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n",
        std::string(5000, 'c'))));
    for (int i = 0; i < 200 && alive_.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
    EXPECT_EQ(alive_.load(), 1);
  }  // closes
  for (int i = 0; i < 200 && alive_.load() != 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(alive_.load(), 0);
}

TEST_F(StreamTest, ASinkErrorIs500) {
  StartServer();
  std::optional<Reply> r = Send(Put("/stream/fail", "data"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 500);
  EXPECT_THAT(r->body, HasSubstr("disk full"));
  EXPECT_THAT(recorder_.rejects(), ::testing::ElementsAre("body_sink"));
}

TEST(ServerFileTest, AFileBodyIsSentToGetAndOnlyItsLengthToHead) {
  testing::TempDir dir;
  std::string content(3 * 256 * 1024 + 77, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i % 251);
  const std::string path = dir.WriteFile("f", content);
  auto server = Start(ServerOptions{}, [&](Request request, Responder respond) {
    Response r;
    r.content_type = "application/octet-stream";
    int fd = request.method == "HEAD" ? -1 : ::open(path.c_str(), O_RDONLY);
    r.file = std::make_shared<FileBody>(fd, content.size());
    respond(std::move(r));
  });
  auto client = RawClient::Connect(server->port());
  ASSERT_TRUE(client->Send(Get("/f")));
  std::optional<Reply> r = client->ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(content.size()));
  EXPECT_TRUE(r->body == content);
  // The same connection goes on: HEAD announces the length, sends nothing.
  ASSERT_TRUE(client->Send("HEAD /f HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = client->ReadResponse(absl::Seconds(5), /*head_only=*/true);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(content.size()));
  ASSERT_TRUE(client->Send(Get("/f")));
  r = client->ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body.size(), content.size());
}

}  // namespace
}  // namespace uploadbroker::http
