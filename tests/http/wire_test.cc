#include "http/wire.h"

#include "gtest/gtest.h"

namespace uploadbroker::http::internal {
namespace {

TEST(SerializeResponseTest, OneBufferWithLengthTypeAndExtraHeaders) {
  Response r{201, "application/json", R"({"ok":1})", {{"X-Trace", "t1"}}};
  EXPECT_EQ(SerializeResponse(r, 11, /*keep_alive=*/true, /*head_request=*/false),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            "X-Trace: t1\r\nContent-Length: 8\r\n\r\n{\"ok\":1}");
}

TEST(SerializeResponseTest, ConnectionHeaderFollowsVersionAndKeepAlive) {
  Response r{200, "", "x", {}};
  EXPECT_EQ(SerializeResponse(r, 11, false, false),
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
  EXPECT_EQ(SerializeResponse(r, 10, true, false),
            "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx");
  EXPECT_EQ(SerializeResponse(r, 10, false, false),
            "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx");
}

TEST(SerializeResponseTest, ServerOwnedHeadersFromTheHandlerAreDropped) {
  Response r{200, "text/plain", "ab",
             {{"content-length", "99"}, {"Connection", "keep-alive"},
              {"Transfer-Encoding", "chunked"}, {"Content-Type", "x/y"}}};
  EXPECT_EQ(SerializeResponse(r, 11, true, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nab");
}

TEST(SerializeResponseTest, HeadKeepsTheLengthWithoutTheBody) {
  Response r{200, "text/plain", "hello", {}};
  EXPECT_EQ(SerializeResponse(r, 11, true, /*head_request=*/true),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
}

TEST(SerializeResponseTest, NoContentCarriesNeitherLengthNorBody) {
  Response r{204, "", "ignored", {}};
  EXPECT_EQ(SerializeResponse(r, 11, true, false), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(SerializeResponseDeathTest, HeaderInjectionAborts) {
  Response r{200, "", "", {{"X-A", "1\r\nSet-Cookie: x"}}};
  EXPECT_DEATH(SerializeResponse(r, 11, true, false), "");
  Response bad_status{99, "", "", {}};
  EXPECT_DEATH(SerializeResponse(bad_status, 11, true, false), "");
}

}  // namespace
}  // namespace uploadbroker::http::internal
