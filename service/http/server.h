// Server: the broker's HTTP/1.1 listener (OSS callbacks, health, metrics),
// built on Boost.Beast; oss-sim serves its OSS API with it too (streamed
// bodies, see stream_body).
//
// All I/O is asynchronous, so a slow or hostile client only ever costs its
// own connection. There are `threads` event loops, each a single-threaded
// io_context with its own acceptor on the shared port (SO_REUSEPORT; the
// kernel spreads new connections over them); a connection stays on the loop
// that accepted it, so nothing of it is shared between the loops. A handler
// that answers on the loop's own thread is written at once; an answer from
// another thread (e.g. the ledger's) is posted to the loop. Each request
// is read completely (within read_timeout and the size limits) before the
// Handler sees it; a connection carries one request at a time, pipelined
// requests are answered in order (a body chosen for streaming goes to its
// BodySink while it arrives, see stream_body). Every answer carries an explicit
// Content-Length (never chunked): OSS rejects callback answers without one.
//
// Protocol errors are answered by the server itself with a small JSON body
// {"error":"...","reason":"..."} and the connection is closed:
//   400 malformed request        413 body over max_body_bytes
//   408 request not read in time 431 headers over max_header_bytes
//   503 over max_connections (the connection is accepted, answered, closed)
//   500 a BodySink's Write or Finish failed
//
// Abuse limits (each reported through on_reject with its reason):
// - A new connection must deliver its whole first request within
//   read_timeout of being accepted; one that sends nothing is closed without
//   an answer ("silent"). Later requests on a keep-alive connection have
//   idle_timeout to start and read_timeout to arrive once started.
// - At most max_connections_per_address connections from one IP address.
//   At the cap, the oldest idle connection from that address (accepted or
//   answered, no byte of a new request yet) is closed to admit the new one
//   ("evicted_idle"); if none is idle, the new connection is closed at once
//   without an answer ("over_address_cap") and on_address_refused is told.
//   An evicted connection never starts a request: eviction and a request's
//   first byte are decided by one atomic step.
//
// Threads: Create, Shutdown and the destructor are called from outside the
// server's threads (never from a Handler). port() may be called anywhere.
#ifndef UPLOADBROKER_HTTP_SERVER_H_
#define UPLOADBROKER_HTTP_SERVER_H_

#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "http/message.h"

namespace uploadbroker::http {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";  // see ParseListen
  int threads = 2;
  size_t max_header_bytes = 8192;
  size_t max_body_bytes = 64 * 1024;
  // The whole request must arrive within this, counted from its first byte
  // (slow-drip defence).
  absl::Duration read_timeout = absl::Seconds(5);
  // A keep-alive connection with no request started is closed after this.
  absl::Duration idle_timeout = absl::Seconds(5);
  // Writing one answer may take at most this (an answer with a FileBody:
  // each piece of it).
  absl::Duration write_timeout = absl::Seconds(5);
  // Shutdown waits at most this long for in-flight requests.
  absl::Duration shutdown_grace = absl::Seconds(5);
  int max_connections = 1024;
  // Connections from one IP address (see "Abuse limits" above).
  int max_connections_per_address = 256;
  // Called for each protocol-level rejection with a stable reason:
  // "malformed", "read_timeout", "body_too_large", "headers_too_large",
  // "over_capacity", "silent", "evicted_idle", "over_address_cap",
  // "tls_handshake", "body_sink". Runs on a server thread; must be thread-safe and fast.
  std::function<void(absl::string_view reason)> on_reject;
  // Called with the client's IP address (untrusted text: escape before
  // logging) when a connection is refused over max_connections_per_address.
  // Same thread rules as on_reject.
  std::function<void(absl::string_view address)> on_address_refused;
  // Source of Request::received_at; null means the real clock. Not owned;
  // must outlive the server.
  const common::Clock* clock = nullptr;
  // HTTPS: called for each accepted connection, returns the TLS context to
  // serve it with (e.g. tls::ReloadingSslContext::Current). Null (or a null
  // context): plain HTTP. The TLS handshake must finish within read_timeout;
  // a failed one is closed and reported to on_reject as "tls_handshake".
  std::function<std::shared_ptr<boost::asio::ssl::context>()> tls;
  // Streamed bodies: called on a server thread once a request's headers are
  // read, with the request minus its body. Returns the BodySink the body is
  // written to as it arrives (its max_bytes, not max_body_bytes, limits it;
  // the Handler then gets Request::body_sink), or null to read the body into
  // Request::body within max_body_bytes. Null (the default): every body is
  // read into memory. Must be thread-safe and quick.
  std::function<std::shared_ptr<BodySink>(const Request& head)> stream_body;
};

// Parses "host:port": an IPv4 literal ("0.0.0.0" for all interfaces), a
// bracketed IPv6 literal ("[::1]:8080") or "localhost". Port 0 picks a free
// port. Returns {host without brackets, port}; InvalidArgument naming the
// problem otherwise.
absl::StatusOr<std::pair<std::string, int>> ParseListen(
    absl::string_view listen);

class Server {
 public:
  // Binds, listens and starts serving. InvalidArgument for bad options,
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options,
                                                        Handler handler);
  ~Server();  // Shutdown(), if not done yet
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the chosen one when listening on port 0).
  int port() const { return port_; }

  // Stops accepting, closes idle connections, lets in-flight requests finish
  // for up to shutdown_grace (their answers say Connection: close), then
  // closes whatever is left and stops the threads. Idempotent.
  void Shutdown();

 private:
  struct Loop;  // one event loop, defined in server.cc
  struct Core;  // asio state, defined in server.cc
  explicit Server(std::unique_ptr<Core> core);
  void Accept(Loop& loop);
  void ShutdownOnce();

  std::unique_ptr<Core> core_;
  int port_ = 0;
  std::vector<std::thread> threads_;
  std::once_flag shutdown_once_;
};

}  // namespace uploadbroker::http

#endif  // UPLOADBROKER_HTTP_SERVER_H_
