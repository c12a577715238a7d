#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/server.h"

namespace uploadbroker::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

TEST(ParseListenTest, AcceptsSupportedForms) {
  EXPECT_THAT(*ParseListen("127.0.0.1:8080"), Pair("127.0.0.1", 8080));
  EXPECT_THAT(*ParseListen("0.0.0.0:0"), Pair("0.0.0.0", 0));
  EXPECT_THAT(*ParseListen("localhost:65535"), Pair("localhost", 65535));
  EXPECT_THAT(*ParseListen("[::1]:9000"), Pair("::1", 9000));
  EXPECT_THAT(*ParseListen("[::]:80"), Pair("::", 80));
}

void ExpectError(const std::string& listen, const std::string& fragment) {
  auto parsed = ParseListen(listen);
  ASSERT_FALSE(parsed.ok()) << listen;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(fragment))
      << listen;
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(listen));
}

TEST(ParseListenTest, RejectsWithClearErrors) {
  ExpectError("", "missing ':port'");
  ExpectError("127.0.0.1", "missing ':port'");
  ExpectError("127.0.0.1:", "missing port");
  ExpectError(":8080", "use 0.0.0.0");
  ExpectError("::1:8080", "must be bracketed");
  ExpectError("[::1]8080", "missing ':port' after ']'");
  ExpectError("[::1:8080", "missing ']'");
  ExpectError("[1.2.3.4]:80", "not an IPv6 address");
  ExpectError("example.com:80", "not an IPv4 address");
  ExpectError("256.1.1.1:80", "not an IPv4 address");
  ExpectError("127.0.0.1:http", "not a number");
  ExpectError("127.0.0.1:65536", "not a number in 0..65535");
  ExpectError("127.0.0.1:-1", "not a number");
  ExpectError("127.0.0.1:+80", "not a number");
}

}  // namespace
}  // namespace uploadbroker::http
