// Internal to http::Server: one accepted TCP connection and the state it
// shares with the server. Not part of the component's interface.
//
// A Connection lives on the single-threaded io_context of the server loop
// that accepted it; every member below is touched only on that loop's thread
// (no strand needed). Its phases: idle (waiting for a request's first byte,
// idle_timeout) -> reading (whole request within read_timeout) -> handling
// (Handler owns a Responder) -> writing (write_timeout) -> idle again, or
// closing. One timer enforces whichever limit the current phase has. Over
// HTTPS a TLS handshake comes first, bounded like a request read.
#ifndef UPLOADBROKER_HTTP_CONNECTION_H_
#define UPLOADBROKER_HTTP_CONNECTION_H_

#include <atomic>
#include <chrono>
#include <list>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "absl/synchronization/mutex.h"
#include "http/routed_body.h"
#include "http/server.h"

namespace uploadbroker::http::internal {

class Connection;

// Asio objects bound to one loop's io_context (typed, not type-erased, so
// an answer can tell whether it runs on the loop's thread).
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using Acceptor =
    boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
using Timer = boost::asio::basic_waitable_timer<
    std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>,
    Executor>;

// Shared by the server, its connections and outstanding responders, so that
// a responder outliving the server finds it closed rather than freed.
struct ServerContext {
  ServerContext(ServerOptions o, Handler h)
      : options(std::move(o)), handler(std::move(h)) {}
  void Rejected(absl::string_view reason) const {
    if (options.on_reject) options.on_reject(reason);
  }

  const ServerOptions options;
  const Handler handler;
  std::atomic<bool> draining{false};  // Shutdown has begun
  std::atomic<int> rejecting{0};      // 503 connections being answered
  // Answers are handed to the loops only while `open`; Shutdown clears it
  // (writer lock) before it stops the loops, so a responder holding the
  // reader lock may still post to them.
  absl::Mutex gate_mu;
  bool open ABSL_GUARDED_BY(gate_mu) = true;
  absl::Mutex mu;
  // Serving connections; the map owns them until they close.
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections
      ABSL_GUARDED_BY(mu);
  // Serving connections by client IP, oldest first (evicted ones leave at
  // once, the others when they close).
  std::unordered_map<std::string, std::list<Connection*>> by_address
      ABSL_GUARDED_BY(mu);

  enum class Admission { kServe, kOverTotal, kOverAddress };
  // Registers `connection` in `connections` and `by_address` when it is
  // admitted; at the per-address cap it may pick an idle connection of the
  // same address to evict (*evicted, which the caller must ForceClose).
  Admission Admit(const std::shared_ptr<Connection>& connection,
                  std::shared_ptr<Connection>* evicted);
  // Unregisters a closing connection and hands back the map's reference,
  // to be released after the lock (null if it was not registered).
  std::shared_ptr<Connection> Forget(Connection* connection);
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `socket` belongs to the io_context of the (single) thread that calls
  // Start or StartRejected; `peer` is the client's address.
  Connection(Socket socket,
             const boost::asio::ip::tcp::endpoint& peer,
             std::shared_ptr<ServerContext> context);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves requests until the peer or a limit closes the connection. The
  // caller has put it in context->connections; it removes itself on close.
  // Call on the connection's loop thread.
  void Start();
  // Answers 503 and closes (over max_connections); counted in
  // context->rejecting by the caller, which it decrements on close. Call on
  // the connection's loop thread.
  void StartRejected();
  // Shutdown: closes the connection if idle; otherwise it closes after the
  // current answer. Any thread.
  void Drain();
  // Closes now, whatever the phase. Any thread.
  void ForceClose();
  // The client's IP address (no port).
  const std::string& address() const { return address_; }
  // Marks the connection evicted if it is idle (no byte of a request read);
  // true if it was, and then it will never start a request. Any thread;
  // the caller then ForceCloses it.
  bool TryEvict();
  // Delivers the handler's answer; a no-op once the server is closed or the
  // connection is gone. Any thread: on the connection's own loop thread the
  // answer is written at once, from elsewhere it is posted to that loop.
  static void Deliver(const std::shared_ptr<ServerContext>& context,
                      const std::weak_ptr<Connection>& connection,
                      Response response);

 private:
  enum class Phase { kIdle, kReading, kHandling, kWriting, kClosing };
  // Whether TryEvict may take the connection.
  enum Evictable : int { kBusy = 0, kIdleNow = 1, kEvicted = 2 };
  using Parser = boost::beast::http::request_parser<RoutedBody>;

  // HTTPS: the handshake (within read_timeout), then `next`; plain HTTP:
  // `next` at once.
  void Handshake(void (Connection::*next)());
  void RejectOverCapacity();
  void ReadNext();
  void StartReading();
  void ReadSome();
  void OnReadSome(boost::system::error_code ec, size_t n);
  void Parse();
  void OnRequest(boost::system::error_code ec);
  void Dispatch();
  void Write(Response response);
  void Reject(int status, const char* error, std::string reason);
  void Send(bool keep_alive);
  void OnWritten();
  // The next piece of file_ into out_ and Send; false when it cannot be read.
  bool SendFilePiece();
  void ArmDeadline(absl::Duration timeout);
  void ArmDeadlineAt(std::chrono::steady_clock::time_point when);
  void OnDeadline();
  void Linger();
  void LingerRead();
  void Close();

  const std::shared_ptr<ServerContext> context_;
  bool tracked_ = false;  // in context_->connections (false: 503 path)
  Socket socket_;
  // HTTPS (ServerOptions::tls): TLS over socket_; null for plain HTTP.
  // Reads and writes of the request go through it; lingering and closing
  // act on socket_ directly.
  std::shared_ptr<boost::asio::ssl::context> tls_context_;
  std::unique_ptr<boost::asio::ssl::stream<Socket&>> tls_;
  Timer deadline_;
  uint64_t deadline_generation_ = 0;
  boost::beast::flat_buffer buffer_;  // received, not yet parsed
  std::optional<Parser> parser_;
  std::string peer_;
  std::string address_;
  std::atomic<int> evictable_{kBusy};
  // The first request must be complete by this (read_timeout from accept).
  std::chrono::steady_clock::time_point first_deadline_;
  bool first_request_ = true;
  Phase phase_ = Phase::kIdle;
  bool timed_out_ = false;  // the read deadline cancelled the read
  bool closed_ = false;
  bool keep_alive_ = false;      // the request allows another one
  bool client_closes_ = false;   // the request said it is the last one
  bool head_request_ = false;    // answer headers only
  bool keep_after_write_ = false;
  unsigned version_ = 11;
  std::string out_;  // the answer being written (or a piece of file_)
  std::shared_ptr<FileBody> file_;  // the rest of the answer, when from a file
  uint64_t file_sent_ = 0;          // bytes of file_ already in out_
  size_t lingered_bytes_ = 0;
  std::string discard_;
};

}  // namespace uploadbroker::http::internal

#endif  // UPLOADBROKER_HTTP_CONNECTION_H_
