#include "http/connection.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace uploadbroker::http::internal {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = boost::asio::ip::tcp;

constexpr size_t kReadChunk = 4096;
// After answering with Connection: close we stop sending and read (and
// discard) what the client still sends for a while, so that closing with
// unread data does not reset the connection before it has read the answer.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerMaxBytes = 1 << 20;

bool IsHttpError(const beast::error_code& ec) {
  return &ec.category() ==
         &bhttp::make_error_code(bhttp::error::bad_method).category();
}

bool IsServerOwnedHeader(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "content-type") ||
         absl::EqualsIgnoreCase(name, "connection") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding");
}

bool HasLineBreak(absl::string_view text) {
  return text.find_first_of("\r\n") != absl::string_view::npos;
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

Connection::Connection(tcp::socket socket,
                       std::shared_ptr<ServerContext> context)
    : context_(std::move(context)),
      stream_(std::move(socket)),
      deadline_(stream_.get_executor()) {
  beast::error_code ec;
  tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
  if (!ec)
    peer_ = absl::StrCat(remote.address().to_string(), ":", remote.port());
}

void Connection::Start() {
  tracked_ = true;
  asio::dispatch(stream_.get_executor(),
                 [self = shared_from_this()] { self->ReadNext(); });
}

void Connection::StartRejected() {
  tracked_ = false;
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->Reject(503, "over_capacity", "server is at its connection limit");
  });
}

void Connection::Drain() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->phase_ == Phase::kIdle) self->Close();
  });
}

void Connection::ForceClose() {
  asio::post(stream_.get_executor(),
             [self = shared_from_this()] { self->Close(); });
}

void Connection::Deliver(const std::shared_ptr<ServerContext>& context,
                         const std::weak_ptr<Connection>& connection,
                         Response response) {
  // Under the lock so Shutdown can close the gate before it stops the
  // io_context; post never runs the function inline.
  absl::MutexLock lock(&context->mu);
  if (!context->open) return;
  std::shared_ptr<Connection> self = connection.lock();
  if (self == nullptr) return;
  asio::post(self->stream_.get_executor(),
             [self, response = std::move(response)]() mutable {
               self->Write(std::move(response));
             });
}

void Connection::ReadNext() {
  if (closed_) return;
  if (context_->draining.load()) {
    Close();
    return;
  }
  phase_ = Phase::kIdle;
  parser_.emplace();
  parser_->header_limit(
      static_cast<uint32_t>(context_->options.max_header_bytes));
  parser_->body_limit(context_->options.max_body_bytes);
  if (buffer_.size() > 0) {  // a pipelined request already arrived
    ReadRequest();
    return;
  }
  ArmDeadline(context_->options.idle_timeout);
  stream_.expires_never();
  stream_.async_read_some(
      buffer_.prepare(kReadChunk),
      [self = shared_from_this()](beast::error_code ec, size_t n) {
        self->buffer_.commit(n);
        if (ec) {  // peer closed, reset, or the idle deadline cancelled us
          self->Close();
          return;
        }
        self->ReadRequest();
      });
}

void Connection::ReadRequest() {
  phase_ = Phase::kReading;
  timed_out_ = false;
  ArmDeadline(context_->options.read_timeout);
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->OnRead(ec);
                    });
}

void Connection::OnRead(beast::error_code ec) {
  ++deadline_generation_;
  deadline_.cancel();
  if (closed_) return;
  const ServerOptions& options = context_->options;
  if (ec && timed_out_) {
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
           absl::StrCat("body exceeds ", options.max_body_bytes, " bytes"));
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
  bhttp::request<bhttp::string_body> message = parser_->release();
  keep_alive_ = message.keep_alive();
  version_ = message.version();
  head_request_ = message.method() == bhttp::verb::head;

  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  size_t question = request.target.find('?');
  request.path_raw = request.target.substr(0, question);
  if (question != std::string::npos) {
    request.query_raw = request.target.substr(question + 1);
  }
  for (const auto& field : message) {
    request.headers.emplace_back(std::string(field.name_string()),
                                 std::string(field.value()));
  }
  request.body = std::move(message.body());
  request.peer = peer_;
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
  UB_CHECK(response.status >= 200 && response.status <= 599);
  auto message = std::make_unique<Message>();
  message->version(version_);
  message->result(static_cast<unsigned>(response.status));
  if (!response.content_type.empty()) {
    message->set(bhttp::field::content_type, response.content_type);
  }
  for (const auto& [name, value] : response.headers) {
    UB_CHECK(!HasLineBreak(name) && !HasLineBreak(value));  // no injection
    if (!IsServerOwnedHeader(name)) message->insert(name, value);
  }
  message->body() = std::move(response.body);
  if (head_request_) {  // the length of the body a GET would get, no body
    message->content_length(message->body().size());
    message->body().clear();
  }
  Send(std::move(message), keep_alive_ && !context_->draining.load());
}

void Connection::Reject(int status, const char* error, std::string reason) {
  context_->Rejected(error);
  auto message = std::make_unique<Message>();
  message->version(11);
  message->result(static_cast<unsigned>(status));
  message->set(bhttp::field::content_type, "application/json");
  message->body() =
      nlohmann::json{{"error", error}, {"reason", std::move(reason)}}.dump();
  Send(std::move(message), /*keep_alive=*/false);
}

void Connection::Send(std::unique_ptr<Message> message, bool keep_alive) {
  phase_ = Phase::kWriting;
  message->keep_alive(keep_alive);
  unsigned status = message->result_int();
  if (status == 204 || status == 304) {
    message->body().clear();  // these may carry neither body nor length
    message->erase(bhttp::field::content_length);
  } else if (!message->has_content_length()) {  // HEAD already has one
    message->content_length(message->body().size());
  }
  stream_.expires_after(
      absl::ToChronoNanoseconds(context_->options.write_timeout));
  std::shared_ptr<Message> owned(std::move(message));
  Message& ref = *owned;
  bhttp::async_write(stream_, ref,
                     [self = shared_from_this(), owned, keep_alive](
                         beast::error_code ec, size_t) {
                       self->stream_.expires_never();
                       if (ec) {
                         self->Close();
                       } else if (keep_alive) {
                         self->ReadNext();
                       } else {
                         self->Linger();
                       }
                     });
}

void Connection::ArmDeadline(absl::Duration timeout) {
  uint64_t generation = ++deadline_generation_;
  deadline_.expires_after(absl::ToChronoNanoseconds(timeout));
  deadline_.async_wait(
      [self = shared_from_this(), generation](beast::error_code ec) {
        if (ec || generation != self->deadline_generation_) return;
        self->OnDeadline();
      });
}

void Connection::OnDeadline() {
  if (phase_ == Phase::kIdle) {
    Close();  // keep-alive idle limit: a normal close, not a rejection
  } else if (phase_ == Phase::kReading) {
    timed_out_ = true;
    stream_.cancel();  // OnRead answers 408
  }
}

void Connection::Linger() {
  phase_ = Phase::kClosing;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    Close();
    return;
  }
  stream_.expires_after(kLingerTime);
  discard_.resize(kReadChunk);
  LingerRead();
}

void Connection::LingerRead() {
  stream_.async_read_some(
      asio::buffer(discard_),
      [self = shared_from_this()](beast::error_code ec, size_t n) {
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
  deadline_.cancel();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
  if (!tracked_) {
    context_->rejecting.fetch_sub(1);
    return;
  }
  std::shared_ptr<Connection> self;  // released after the lock
  absl::MutexLock lock(&context_->mu);
  auto it = context_->connections.find(this);
  if (it != context_->connections.end()) {
    self = std::move(it->second);
    context_->connections.erase(it);
  }
}

}  // namespace uploadbroker::http::internal
