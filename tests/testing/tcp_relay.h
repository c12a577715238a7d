// TcpRelay: a loopback TCP listener on a port the kernel picked (port 0),
// held from construction to destruction, that relays each connection to a
// target port named later. For tests whose config must name a server's port
// before that server has bound one (e.g. the broker's callback URL, which
// OSS calls): the config names the relay, the server binds port 0, and
// SetTarget() connects the two. No port is picked and released, so nothing
// else can take it in between.
//
// heads() counts the HTTP HEAD requests relayed towards the target (request
// lines starting "HEAD /" in that direction): a relay in front of oss-sim
// counts the HeadObjects a broker sends.
//
// Threads: one accept thread, one thread per relayed connection; all joined
// by the destructor, which closes every socket. SetTarget may be called from
// any thread; connections accepted before it are closed.
#ifndef UPLOADBROKER_TESTS_TESTING_TCP_RELAY_H_
#define UPLOADBROKER_TESTS_TESTING_TCP_RELAY_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace uploadbroker::testing {

class TcpRelay {
 public:
  TcpRelay() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof(addr);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 64) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::abort();  // loopback with port 0 cannot fail on a working host
    }
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TcpRelay() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    accept_thread_.join();
    ::close(listen_fd_);
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    for (int fd : open_fds_) ::close(fd);
  }
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  int port() const { return port_; }
  void SetTarget(int port) { target_ = port; }
  int heads() const { return heads_.load(); }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  void AcceptLoop() {
    for (;;) {
      int in = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (in < 0) {
        if (stopping_) return;
        continue;
      }
      int out = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = Loopback(target_.load());
      if (target_.load() == 0 ||
          ::connect(out, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(in);
        ::close(out);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        ::close(in);
        ::close(out);
        return;
      }
      open_fds_.push_back(in);
      open_fds_.push_back(out);
      threads_.emplace_back([this, in, out] { Pump(in, out); });
    }
  }

  // Copies both ways until both directions ended, passing half-closes on.
  // The sockets stay open (the destructor may still shut them down) until
  // the relay is destroyed.
  void Pump(int a, int b) {
    bool open[2] = {true, true};  // a->b, b->a
    std::string upstream_tail;    // last bytes sent a->b, for a match across reads
    while (open[0] || open[1]) {
      pollfd p[2] = {{a, static_cast<short>(open[0] ? POLLIN : 0), 0},
                     {b, static_cast<short>(open[1] ? POLLIN : 0), 0}};
      if (::poll(p, 2, -1) < 0) return;
      for (int i = 0; i < 2; ++i) {
        if (!open[i] || p[i].revents == 0) continue;
        const int from = i == 0 ? a : b, to = i == 0 ? b : a;
        char buf[16384];
        ssize_t n = ::recv(from, buf, sizeof(buf), 0);
        bool ok = n > 0;
        if (ok && i == 0) {
          std::string seen = upstream_tail + std::string(buf, static_cast<size_t>(n));
          for (size_t at = seen.find("HEAD /"); at != std::string::npos; at = seen.find("HEAD /", at + 1)) {
            ++heads_;
          }
          upstream_tail = seen.substr(seen.size() > 5 ? seen.size() - 5 : 0);
        }
        for (ssize_t off = 0; ok && off < n;) {
          ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
          ok = w > 0;
          off += w > 0 ? w : 0;
        }
        if (!ok) {
          open[i] = false;
          ::shutdown(to, SHUT_WR);
        }
      }
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<int> target_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> heads_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> open_fds_;        // closed by the destructor
  std::vector<std::thread> threads_;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_TCP_RELAY_H_
