// RawClient: a blocking POSIX-socket HTTP client for the http tests, so they
// control every byte on the wire (slow drips, pipelining, malformed input).
// Every read is bounded by a timeout so a broken server fails, not hangs.
#ifndef UPLOADBROKER_TESTS_HTTP_RAW_CLIENT_H_
#define UPLOADBROKER_TESTS_HTTP_RAW_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace uploadbroker::http {

struct Reply {
  int status = 0;
  std::string head;  // status line and headers, without the blank line
  std::string body;

  // First header named `name` (case-insensitive); nullopt if absent.
  std::optional<std::string> Header(absl::string_view name) const {
    for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
      size_t colon = line.find(':');
      if (colon == absl::string_view::npos) continue;
      if (absl::EqualsIgnoreCase(line.substr(0, colon), name)) {
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
      }
    }
    return std::nullopt;
  }
};

class RawClient {
 public:
  // nullptr when the connection is refused.
  static std::unique_ptr<RawClient> Connect(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return nullptr;
    }
    return std::unique_ptr<RawClient>(new RawClient(fd));
  }
  ~RawClient() { ::close(fd_); }

  bool Send(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // True when a byte (or EOF) can be read within `timeout`.
  bool Readable(absl::Duration timeout) {
    return !pending_.empty() || SocketReadable(timeout);
  }

  // One response framed by Content-Length (or by EOF without one; no body
  // for `head_only`, the answer to HEAD); nullopt on EOF before a complete
  // response or on timeout.
  std::optional<Reply> ReadResponse(absl::Duration timeout = absl::Seconds(5),
                                    bool head_only = false) {
    const absl::Time deadline = absl::Now() + timeout;
    size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return std::nullopt;
    }
    Reply reply;
    reply.head = pending_.substr(0, end);
    pending_.erase(0, end + 4);
    if (reply.head.size() < 12 ||
        !absl::SimpleAtoi(reply.head.substr(9, 3), &reply.status)) {
      return std::nullopt;
    }
    size_t length = 0;
    std::optional<std::string> header = reply.Header("Content-Length");
    if (head_only) {
      length = 0;
    } else if (header.has_value()) {
      if (!absl::SimpleAtoi(*header, &length)) return std::nullopt;
      while (pending_.size() < length) {
        if (!Fill(deadline)) return std::nullopt;
      }
    } else {
      while (Fill(deadline)) {
      }
      length = pending_.size();
    }
    reply.body = pending_.substr(0, length);
    pending_.erase(0, length);
    return reply;
  }

  // True when the server closes (EOF or reset) within `timeout` with no
  // further bytes.
  bool ReadsEof(absl::Duration timeout = absl::Seconds(5)) {
    if (!pending_.empty()) return false;
    if (!SocketReadable(timeout)) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

 private:
  explicit RawClient(int fd) : fd_(fd) {}

  bool SocketReadable(absl::Duration timeout) {
    pollfd p{fd_, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
    return ::poll(&p, 1, ms) > 0;
  }

  // Appends what arrives before `deadline`; false on EOF, error or timeout.
  bool Fill(absl::Time deadline) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || !SocketReadable(left)) return false;
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    pending_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  const int fd_;
  std::string pending_;
};

}  // namespace uploadbroker::http

#endif  // UPLOADBROKER_TESTS_HTTP_RAW_CLIENT_H_
