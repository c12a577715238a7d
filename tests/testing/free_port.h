// FreePort: a loopback TCP port that was free a moment ago, for tests that
// must name a port before anything listens on it (or one nothing listens on).
#ifndef UPLOADBROKER_TESTS_TESTING_FREE_PORT_H_
#define UPLOADBROKER_TESTS_TESTING_FREE_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace uploadbroker::testing {

inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_FREE_PORT_H_
