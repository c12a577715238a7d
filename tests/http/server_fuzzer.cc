// libFuzzer target for http::Server's request handling (build with
// -DUB_FUZZ=ON, clang): bytes go over a real loopback connection to a server
// whose handler is the broker's CallbackHandler over a real ledger (see
// tests/ingest/fuzz_harness.h), so parsing, limits, keep-alive, pipelining
// and the callback path behind them are all exercised.
//
// Input: one flag byte, then
//  - flag bit 0 clear: raw bytes, sent as they are;
//  - flag bit 0 set: '\0'-separated request target, content type, body and
//    extra header lines; the harness builds a well-formed POST around them
//    signed with the harness key over the target's query and the body, so
//    the accepting path is reachable.
// The client half-closes after sending and reads until the server closes.
//
// Findings: crashes, sanitizer reports, a connection the server neither
// answers nor closes within a generous deadline, and answers that are not
// HTTP/1.x status lines with a Content-Length (abort).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "http/server.h"
#include "tests/ingest/fuzz_harness.h"

namespace {

using uploadbroker::fuzz::CallbackHarness;

// One server for the whole fuzzing process, never destroyed (a static
// pointer, so LeakSanitizer sees it reachable).
int ServerPort() {
  static uploadbroker::http::Server* const server = [] {
    uploadbroker::http::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 1;
    options.read_timeout = absl::Seconds(2);
    options.idle_timeout = absl::Seconds(2);
    auto created = uploadbroker::http::Server::Create(
        options, [](uploadbroker::http::Request req, uploadbroker::http::Responder respond) {
          CallbackHarness::Get().handler().Handle(std::move(req), std::move(respond));
        });
    UB_CHECK(created.ok());
    return created->release();
  }();
  return server->port();
}

// Sends `bytes`, half-closes, returns everything read until the server
// closes. Aborts if it neither answers nor closes within 30 s.
std::string Exchange(const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  UB_CHECK(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(ServerPort()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  UB_CHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed early (e.g. after a 400)
    off += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string out;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    UB_CHECK(ms > 0 && poll(&p, 1, ms) > 0);  // hang: neither answered nor closed
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

// The first answer, if any, is a status line 200..599 with a
// Content-Length (later ones may answer HEAD, whose body is absent).
void CheckAnswers(absl::string_view out) {
  if (out.empty()) return;  // closed without an answer (e.g. EOF mid-request)
  if (!absl::StartsWith(out, "HTTP/1.1 ") && !absl::StartsWith(out, "HTTP/1.0 ")) std::abort();
  size_t end = out.find("\r\n\r\n");
  if (end == absl::string_view::npos) std::abort();
  absl::string_view head = out.substr(0, end);
  int status = 0;
  if (!absl::SimpleAtoi(head.substr(9, 3), &status) || status < 200 || status > 599) std::abort();
  bool has_length = false;
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    has_length = has_length || absl::StartsWithIgnoreCase(line, "content-length:");
  }
  if (!has_length) std::abort();  // OSS rejects answers without one
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool sign = (data[0] & 1) != 0;
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string request;
  if (!sign) {
    request = input;
  } else {
    std::vector<std::string> parts = absl::StrSplit(input, absl::MaxSplits('\0', 3));
    parts.resize(4);
    std::string target = parts[0].empty() || parts[0][0] != '/' ? "/cb" : parts[0];
    size_t q = target.find('?');
    std::string query = q == std::string::npos ? "" : target.substr(q + 1);
    CallbackHarness& harness = CallbackHarness::Get();
    request = absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: broker\r\n", "Content-Type: ",
                           parts[1], "\r\nAuthorization: ", harness.Authorization(query, parts[2]),
                           "\r\nx-oss-pub-key-url: ", CallbackHarness::KeyUrlHeader(),
                           "\r\nContent-Length: ", parts[2].size(), "\r\n", parts[3],
                           parts[3].empty() || absl::EndsWith(parts[3], "\r\n") ? "" : "\r\n", "\r\n",
                           parts[2]);
  }
  CheckAnswers(Exchange(request));
  return 0;
}
