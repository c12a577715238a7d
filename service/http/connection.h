// Internal to http::Server: one accepted TCP connection and the state it
// shares with the server. Not part of the component's interface.
//
// A Connection runs on its own strand; every member below is touched only
// there. Its phases: idle (waiting for a request's first byte, idle_timeout)
// -> reading (whole request within read_timeout) -> handling (Handler owns a
// Responder) -> writing (write_timeout) -> idle again, or closing.
#ifndef UPLOADBROKER_HTTP_CONNECTION_H_
#define UPLOADBROKER_HTTP_CONNECTION_H_

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "absl/synchronization/mutex.h"
#include "http/server.h"

namespace uploadbroker::http::internal {

class Connection;

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
  absl::Mutex mu;
  bool open ABSL_GUARDED_BY(mu) = true;  // false: responders do nothing
  // Serving connections; the map owns them until they close.
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections
      ABSL_GUARDED_BY(mu);
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `socket` must have been accepted on a strand of its own.
  Connection(boost::asio::ip::tcp::socket socket,
             std::shared_ptr<ServerContext> context);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves requests until the peer or a limit closes the connection. The
  // caller has put it in context->connections; it removes itself on close.
  void Start();
  // Answers 503 and closes (over max_connections); counted in
  // context->rejecting by the caller, which it decrements on close.
  void StartRejected();
  // Shutdown: closes the connection if idle; otherwise it closes after the
  // current answer. Any thread.
  void Drain();
  // Closes now, whatever the phase. Any thread.
  void ForceClose();
  // Delivers the handler's answer; a no-op once the server is closed or the
  // connection is gone. Any thread.
  static void Deliver(const std::shared_ptr<ServerContext>& context,
                      const std::weak_ptr<Connection>& connection,
                      Response response);

 private:
  enum class Phase { kIdle, kReading, kHandling, kWriting, kClosing };
  using Parser =
      boost::beast::http::request_parser<boost::beast::http::string_body>;
  using Message = boost::beast::http::response<boost::beast::http::string_body>;

  void ReadNext();
  void ReadRequest();
  void OnRead(boost::beast::error_code ec);
  void Dispatch();
  void Write(Response response);
  void Reject(int status, const char* error, std::string reason);
  void Send(std::unique_ptr<Message> message, bool keep_alive);
  void ArmDeadline(absl::Duration timeout);
  void OnDeadline();
  void Linger();
  void LingerRead();
  void Close();

  const std::shared_ptr<ServerContext> context_;
  bool tracked_ = false;  // in context_->connections (false: 503 path)
  boost::beast::tcp_stream stream_;
  boost::asio::steady_timer deadline_;
  uint64_t deadline_generation_ = 0;
  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::string peer_;
  Phase phase_ = Phase::kIdle;
  bool timed_out_ = false;  // the read deadline cancelled the read
  bool closed_ = false;
  bool keep_alive_ = false;
  bool head_request_ = false;  // answer headers only
  unsigned version_ = 11;
  size_t lingered_bytes_ = 0;
  std::string discard_;
};

}  // namespace uploadbroker::http::internal

#endif  // UPLOADBROKER_HTTP_CONNECTION_H_
