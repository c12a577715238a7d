#include "http/connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "http/wire.h"

namespace uploadbroker::http::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using boost::system::error_code;

constexpr size_t kReadChunk = 4096;
// Reads of a body going to a BodySink, and pieces of a FileBody answer.
constexpr size_t kStreamChunk = 256 * 1024;
// After answering with Connection: close while the client may still be
// sending (an unread request, pipelined bytes, or a request that did not
// ask to close) we stop sending and read (and discard) what it sends for a
// while, so that closing with unread data does not reset the connection
// before it has read the answer.
constexpr absl::Duration kLingerTime = absl::Seconds(1);
constexpr size_t kLingerMaxBytes = 1 << 20;

bool IsHttpError(const error_code& ec) {
  return &ec.category() ==
         &bhttp::make_error_code(bhttp::error::bad_method).category();
}

// Owned by every copy of one Responder: enforces "exactly once" and answers
// 500 when the handler drops the request.
class ResponderState {
 public:
  ResponderState(std::shared_ptr<ServerContext> context,
                 std::weak_ptr<Connection> connection)
      : context_(std::move(context)), connection_(std::move(connection)) {}
  ~ResponderState() {
    if (called_.load()) return;
    Response response;
    response.status = 500;
    response.body = nlohmann::json{{"error", "internal"},
                                   {"reason", "handler dropped the request"}}
                        .dump();
    Connection::Deliver(context_, connection_, std::move(response));
  }
  void Respond(Response response) {
    UB_CHECK(!called_.exchange(true));  // a Responder is called exactly once
    Connection::Deliver(context_, connection_, std::move(response));
  }

 private:
  const std::shared_ptr<ServerContext> context_;
  const std::weak_ptr<Connection> connection_;
  std::atomic<bool> called_{false};
};

}  // namespace

Connection::Connection(Socket socket, const tcp::endpoint& peer,
                       std::shared_ptr<ServerContext> context)
    : context_(std::move(context)),
      socket_(std::move(socket)),
      deadline_(socket_.get_executor()),
      peer_(absl::StrCat(peer.address().to_string(), ":", peer.port())),
      address_(peer.address().to_string()),
      first_deadline_(std::chrono::steady_clock::now() +
                      absl::ToChronoNanoseconds(context_->options.read_timeout)) {
  if (context_->options.tls) tls_context_ = context_->options.tls();
  if (tls_context_ != nullptr) {
    tls_ = std::make_unique<asio::ssl::stream<Socket&>>(socket_, *tls_context_);
  }
}

ServerContext::Admission ServerContext::Admit(
    const std::shared_ptr<Connection>& connection,
    std::shared_ptr<Connection>* evicted) {
  absl::MutexLock lock(&mu);
  if (connections.size() >= static_cast<size_t>(options.max_connections)) {
    return Admission::kOverTotal;
  }
  std::list<Connection*>& same = by_address[connection->address()];
  if (same.size() >= static_cast<size_t>(options.max_connections_per_address)) {
    // Oldest first: an attacker's idle connections go before a newer
    // legitimate one that has not sent its first byte yet.
    for (auto it = same.begin(); it != same.end(); ++it) {
      if ((*it)->TryEvict()) {
        *evicted = connections[*it];
        same.erase(it);
        break;
      }
    }
    if (*evicted == nullptr) {
      if (same.empty()) by_address.erase(connection->address());
      return Admission::kOverAddress;
    }
  }
  same.push_back(connection.get());
  connections.emplace(connection.get(), connection);
  return Admission::kServe;
}

std::shared_ptr<Connection> ServerContext::Forget(Connection* connection) {
  std::shared_ptr<Connection> owned;
  absl::MutexLock lock(&mu);
  auto it = connections.find(connection);
  if (it == connections.end()) return owned;
  owned = std::move(it->second);
  connections.erase(it);
  auto same = by_address.find(connection->address());
  if (same != by_address.end()) {
    same->second.remove(connection);  // linear, at most the per-address cap
    if (same->second.empty()) by_address.erase(same);
  }
  return owned;
}

bool Connection::TryEvict() {
  int idle = kIdleNow;
  return evictable_.compare_exchange_strong(idle, kEvicted);
}

void Connection::Start() {
  tracked_ = true;
  error_code ec;
  socket_.non_blocking(true, ec);  // answers are written without waiting
  Handshake(&Connection::ReadNext);
}

void Connection::StartRejected() {
  tracked_ = false;
  error_code ec;
  socket_.non_blocking(true, ec);
  Handshake(&Connection::RejectOverCapacity);
}

void Connection::RejectOverCapacity() {
  Reject(503, "over_capacity", "server is at its connection limit");
}

void Connection::Handshake(void (Connection::*next)()) {
  if (tls_ == nullptr) {
    (this->*next)();
    return;
  }
  phase_ = Phase::kReading;  // the first-request deadline cancels a slow handshake
  ArmDeadlineAt(first_deadline_);
  tls_->async_handshake(asio::ssl::stream_base::server,
                        [self = shared_from_this(), next](error_code ec) {
                          ++self->deadline_generation_;
                          self->deadline_.cancel();
                          if (self->closed_) return;
                          if (ec) {
                            self->context_->Rejected("tls_handshake");
                            self->Close();
                            return;
                          }
                          (self.get()->*next)();
                        });
}

void Connection::Drain() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    if (self->phase_ == Phase::kIdle) self->Close();
  });
}

void Connection::ForceClose() {
  asio::post(socket_.get_executor(),
             [self = shared_from_this()] { self->Close(); });
}

void Connection::Deliver(const std::shared_ptr<ServerContext>& context,
                         const std::weak_ptr<Connection>& connection,
                         Response response) {
  std::shared_ptr<Connection> self = connection.lock();
  if (self == nullptr) return;
  {
    // While `open` the loops run (Shutdown stops them only after clearing
    // it under the writer lock), so posting to one is safe.
    absl::ReaderMutexLock lock(&context->gate_mu);
    if (!context->open) return;
    if (!self->socket_.get_executor().running_in_this_thread()) {
      asio::post(self->socket_.get_executor(),
                 [self, response = std::move(response)]() mutable {
                   self->Write(std::move(response));
                 });
      return;
    }
  }
  self->Write(std::move(response));  // the handler answered on our thread
}

void Connection::ReadNext() {
  if (closed_) return;
  if (context_->draining.load()) {
    Close();
    return;
  }
  phase_ = Phase::kIdle;
  parser_.emplace();
  parser_->eager(true);
  parser_->header_limit(
      static_cast<uint32_t>(context_->options.max_header_bytes));
  // Without stream_body the parser enforces max_body_bytes itself; with it
  // the body's reader enforces the limit of whichever destination it picks.
  parser_->body_limit(context_->options.stream_body
                          ? std::numeric_limits<uint64_t>::max()
                          : context_->options.max_body_bytes);
  parser_->get().body().options = &context_->options;
  parser_->get().body().peer = &peer_;
  if (buffer_.size() > 0) {  // a pipelined request already arrived
    StartReading();
    return;
  }
  if (first_request_) {
    ArmDeadlineAt(first_deadline_);
  } else {
    ArmDeadline(context_->options.idle_timeout);
  }
  int busy = kBusy;
  evictable_.compare_exchange_strong(busy, kIdleNow);
  ReadSome();
}

void Connection::StartReading() {
  phase_ = Phase::kReading;
  timed_out_ = false;
  if (first_request_) {
    ArmDeadlineAt(first_deadline_);
  } else {
    ArmDeadline(context_->options.read_timeout);
  }
  Parse();
}

void Connection::ReadSome() {
  auto on_read = [self = shared_from_this()](error_code ec, size_t n) {
    self->OnReadSome(ec, n);
  };
  const size_t chunk = parser_ && parser_->get().body().sink != nullptr
                           ? kStreamChunk : kReadChunk;
  if (tls_ != nullptr) {
    tls_->async_read_some(buffer_.prepare(chunk), std::move(on_read));
  } else {
    socket_.async_read_some(buffer_.prepare(chunk), std::move(on_read));
  }
}

void Connection::OnReadSome(error_code ec, size_t n) {
  buffer_.commit(n);
  if (closed_) return;
  if (phase_ == Phase::kIdle) {
    int idle = kIdleNow;
    if (ec || !evictable_.compare_exchange_strong(idle, kBusy)) {
      // Peer closed, reset, the idle deadline cancelled us, or we were
      // evicted (ForceClose is on its way).
      Close();
      return;
    }
    StartReading();
    return;
  }
  if (!ec) {
    Parse();
  } else if (timed_out_) {
    OnRequest(ec);
  } else if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    beast::error_code parse_ec;
    parser_->put_eof(parse_ec);
    OnRequest(parse_ec ? parse_ec : bhttp::error::end_of_stream);
  } else {
    Close();  // network error
  }
}

// Feeds what has arrived to the parser; reads more until the request is
// complete or the parser refuses it (it enforces the size limits).
void Connection::Parse() {
  beast::error_code ec;
  while (buffer_.size() > 0 && !parser_->is_done()) {
    size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec) break;
  }
  if (ec || parser_->is_done()) {
    OnRequest(ec);
  } else {
    ReadSome();
  }
}

void Connection::OnRequest(error_code ec) {
  ++deadline_generation_;
  deadline_.cancel();
  const ServerOptions& options = context_->options;
  std::string sink_error;
  if (ec && parser_) {
    // A streamed body that did not arrive whole is dropped now (its sink
    // discards what it got), not when the connection goes.
    sink_error = std::move(parser_->get().body().sink_error);
    parser_.reset();
  }
  if (!sink_error.empty()) {
    Reject(500, "body_sink", std::move(sink_error));
  } else if (ec && timed_out_) {
    Reject(408, "read_timeout",
           absl::StrCat("request not received within ",
                        absl::FormatDuration(options.read_timeout)));
  } else if (!ec) {
    Dispatch();
  } else if (ec == bhttp::error::end_of_stream ||
             ec == bhttp::error::partial_message) {
    Close();  // the client went away; nobody to answer
  } else if (ec == bhttp::error::body_limit) {
    Reject(413, "body_too_large",
           options.stream_body
               ? std::string("body exceeds the limit for this request")
               : absl::StrCat("body exceeds ", options.max_body_bytes, " bytes"));
  } else if (ec == bhttp::error::header_limit) {
    Reject(431, "headers_too_large",
           absl::StrCat("headers exceed ", options.max_header_bytes, " bytes"));
  } else if (IsHttpError(ec)) {
    Reject(400, "malformed", ec.message());
  } else {
    Close();  // network error
  }
}

void Connection::Dispatch() {
  phase_ = Phase::kHandling;
  first_request_ = false;
  bhttp::request<RoutedBody> message = parser_->release();
  parser_.reset();
  keep_alive_ = message.keep_alive();
  client_closes_ = !keep_alive_;
  version_ = message.version();
  head_request_ = message.method() == bhttp::verb::head;

  Request request = RequestHead(message.base(), peer_);
  request.body = std::move(message.body().text);
  request.body_sink = std::move(message.body().sink);
  request.received_at = context_->options.clock != nullptr
                            ? context_->options.clock->Now()
                            : absl::Now();

  auto state = std::make_shared<ResponderState>(context_, weak_from_this());
  context_->handler(std::move(request), [state](Response response) {
    state->Respond(std::move(response));
  });
}

void Connection::Write(Response response) {
  if (closed_ || phase_ != Phase::kHandling) return;
  const bool keep_alive = keep_alive_ && !context_->draining.load();
  out_ = SerializeResponse(response, version_, keep_alive, head_request_);
  if (response.file != nullptr && !head_request_ && response.status != 204 &&
      response.status != 304) {
    UB_CHECK(response.file->fd >= 0);  // fd -1 is for HEAD answers only
    file_ = std::move(response.file);
    file_sent_ = 0;
  }
  Send(keep_alive);
}

void Connection::Reject(int status, const char* error, std::string reason) {
  context_->Rejected(error);
  Response response;
  response.status = status;
  response.body =
      nlohmann::json{{"error", error}, {"reason", std::move(reason)}}.dump();
  client_closes_ = false;  // the rest of its request may still be coming
  out_ = SerializeResponse(response, 11, /*keep_alive=*/false,
                           /*head_request=*/false);
  Send(/*keep_alive=*/false);
}

// Writes out_ at once if the socket takes it (the usual case for a small
// answer), else finishes it asynchronously within write_timeout.
void Connection::Send(bool keep_alive) {
  phase_ = Phase::kWriting;
  keep_after_write_ = keep_alive;
  error_code ec;
  // Over TLS every write goes through the TLS stream, asynchronously.
  size_t written = tls_ != nullptr ? 0 : socket_.write_some(asio::buffer(out_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    written = 0;
  } else if (ec) {
    Close();
    return;
  }
  if (written == out_.size()) {
    OnWritten();
    return;
  }
  ArmDeadline(context_->options.write_timeout);
  auto on_written = [self = shared_from_this()](error_code write_ec, size_t) {
    ++self->deadline_generation_;
    self->deadline_.cancel();
    if (write_ec || self->closed_) {
      self->Close();
    } else {
      self->OnWritten();
    }
  };
  auto rest = asio::buffer(out_.data() + written, out_.size() - written);
  if (tls_ != nullptr) {
    asio::async_write(*tls_, rest, std::move(on_written));
  } else {
    asio::async_write(socket_, rest, std::move(on_written));
  }
}

bool Connection::SendFilePiece() {
  const uint64_t left = file_->size - file_sent_;
  out_.resize(static_cast<size_t>(std::min<uint64_t>(left, kStreamChunk)));
  size_t have = 0;
  while (have < out_.size()) {
    ssize_t n = ::pread(file_->fd, out_.data() + have, out_.size() - have,
                        static_cast<off_t>(file_sent_ + have));
    if (n <= 0) return false;  // an error, or the file is shorter than said
    have += static_cast<size_t>(n);
  }
  file_sent_ += out_.size();
  Send(keep_after_write_);
  return true;
}

void Connection::OnWritten() {
  out_.clear();
  if (file_ != nullptr && file_sent_ < file_->size) {
    // Posted, not called: pieces written at once must not recurse. The
    // Content-Length is out already: a file that cannot be read to the end
    // can only end the connection.
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      if (!self->closed_ && !self->SendFilePiece()) self->Close();
    });
    return;
  }
  file_.reset();
  if (keep_after_write_) {
    // Posted, not called: a handler answering inline must not recurse
    // through every pipelined request.
    asio::post(socket_.get_executor(),
               [self = shared_from_this()] { self->ReadNext(); });
    return;
  }
  // The client said this request was its last and sent nothing more: close
  // now, there is nothing unread that would turn the close into a reset.
  error_code ec;
  if (client_closes_ && buffer_.size() == 0 && socket_.available(ec) == 0 &&
      !ec) {
    Close();
    return;
  }
  Linger();
}

void Connection::ArmDeadline(absl::Duration timeout) {
  uint64_t generation = ++deadline_generation_;
  deadline_.expires_after(absl::ToChronoNanoseconds(timeout));
  deadline_.async_wait(
      [self = shared_from_this(), generation](error_code ec) {
        if (ec || generation != self->deadline_generation_) return;
        self->OnDeadline();
      });
}

void Connection::ArmDeadlineAt(std::chrono::steady_clock::time_point when) {
  uint64_t generation = ++deadline_generation_;
  deadline_.expires_at(when);
  deadline_.async_wait(
      [self = shared_from_this(), generation](error_code ec) {
        if (ec || generation != self->deadline_generation_) return;
        self->OnDeadline();
      });
}

void Connection::OnDeadline() {
  if (phase_ == Phase::kIdle && first_request_) {
    context_->Rejected("silent");  // nothing within read_timeout of accept
    Close();
  } else if (phase_ == Phase::kReading) {
    timed_out_ = true;
    error_code ec;
    socket_.cancel(ec);  // OnRequest answers 408
  } else if (phase_ != Phase::kHandling) {
    // Idle keep-alive limit (a normal close, not a rejection), a write that
    // took too long, or the end of lingering.
    Close();
  }
}

void Connection::Linger() {
  phase_ = Phase::kClosing;
  error_code ec;
  socket_.shutdown(Socket::shutdown_send, ec);
  if (ec) {
    Close();
    return;
  }
  ArmDeadline(kLingerTime);
  discard_.resize(kReadChunk);
  LingerRead();
}

void Connection::LingerRead() {
  socket_.async_read_some(
      asio::buffer(discard_),
      [self = shared_from_this()](error_code ec, size_t n) {
        self->lingered_bytes_ += n;
        if (ec || self->lingered_bytes_ > kLingerMaxBytes) {
          self->Close();
        } else {
          self->LingerRead();
        }
      });
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  phase_ = Phase::kClosing;
  parser_.reset();  // a half-read streamed body is discarded now
  file_.reset();
  ++deadline_generation_;
  deadline_.cancel();
  error_code ec;
  socket_.shutdown(Socket::shutdown_both, ec);
  socket_.close(ec);
  if (!tracked_) {
    context_->rejecting.fetch_sub(1);
    return;
  }
  // Released after Forget's lock: it may be the last reference.
  std::shared_ptr<Connection> self = context_->Forget(this);
}

}  // namespace uploadbroker::http::internal
