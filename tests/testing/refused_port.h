// RefusedPort: a loopback TCP port that refuses connections for as long as
// the object lives. It is bound (port 0, so the kernel picks it) but never
// listens, so no other process can take it while the test runs: a config
// can name it as an address nothing answers at.
#ifndef UPLOADBROKER_TESTS_TESTING_REFUSED_PORT_H_
#define UPLOADBROKER_TESTS_TESTING_REFUSED_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace uploadbroker::testing {

class RefusedPort {
 public:
  RefusedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::abort();  // loopback with port 0 cannot fail on a working host
    }
    port_ = ntohs(addr.sin_port);
  }
  ~RefusedPort() { ::close(fd_); }
  RefusedPort(const RefusedPort&) = delete;
  RefusedPort& operator=(const RefusedPort&) = delete;

  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_REFUSED_PORT_H_
