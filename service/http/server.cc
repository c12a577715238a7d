#include "http/server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_executor.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "http/connection.h"

namespace uploadbroker::http {

namespace asio = boost::asio;
using tcp = boost::asio::ip::tcp;
using internal::Connection;
using internal::ServerContext;

namespace {

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// How long Shutdown waits for force-closed connections to unregister.
constexpr absl::Duration kForceCloseWait = absl::Seconds(1);

absl::Status ValidateOptions(const ServerOptions& options,
                             const Handler& handler) {
  auto positive = [](absl::Duration d) { return d > absl::ZeroDuration(); };
  if (options.threads < 1) {
    return absl::InvalidArgumentError("http: threads must be at least 1");
  }
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(
        "http: max_connections must be at least 1");
  }
  if (options.max_connections_per_address < 1) {
    return absl::InvalidArgumentError(
        "http: max_connections_per_address must be at least 1");
  }
  if (options.max_header_bytes == 0 || options.max_header_bytes > UINT32_MAX) {
    return absl::InvalidArgumentError("http: max_header_bytes out of range");
  }
  if (!positive(options.read_timeout) || !positive(options.idle_timeout) ||
      !positive(options.write_timeout) ||
      options.shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("http: timeouts must be positive");
  }
  if (handler == nullptr) {
    return absl::InvalidArgumentError("http: handler is required");
  }
  return absl::OkStatus();
}

std::vector<std::shared_ptr<Connection>> Snapshot(ServerContext& context) {
  std::vector<std::shared_ptr<Connection>> result;
  absl::MutexLock lock(&context.mu);
  for (const auto& entry : context.connections) result.push_back(entry.second);
  return result;
}

// Waits until every serving connection has unregistered, or `timeout`.
void AwaitNoConnections(ServerContext& context, absl::Duration timeout) {
  using Map = decltype(context.connections);
  absl::MutexLock lock(&context.mu);
  context.mu.AwaitWithTimeout(
      absl::Condition(
          +[](Map* map) { return map->empty(); }, &context.connections),
      timeout);
}

}  // namespace

// One event loop: a single-threaded io_context with its own acceptor on the
// shared port. Declaration order is destruction order in reverse: the
// io_context goes last, destroying any handler (and the connection it
// holds) still queued.
struct Server::Loop {
  Loop()
      : io(1),
        work(asio::make_work_guard(io)),
        acceptor(io.get_executor()),
        retry(io.get_executor()) {}

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  internal::Acceptor acceptor;  // used only on this loop's thread
  internal::Timer retry;
  tcp::endpoint peer;  // filled in by the pending accept
};

struct Server::Core {
  Core(ServerOptions options, Handler handler)
      : context(std::make_shared<ServerContext>(std::move(options),
                                                std::move(handler))) {}

  std::shared_ptr<ServerContext> context;
  std::vector<std::unique_ptr<Loop>> loops;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options,
                                                       Handler handler) {
  UB_RETURN_IF_ERROR(ValidateOptions(options, handler));
  UB_ASSIGN_OR_RETURN(auto host_port, ParseListen(options.listen));
  if (host_port.first == "localhost") host_port.first = "127.0.0.1";
  boost::system::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(host_port.first, ec),
                         static_cast<unsigned short>(host_port.second));
  UB_CHECK(!ec);  // ParseListen accepted it
  const std::string listen = options.listen;
  const int threads = options.threads;
  auto core = std::make_unique<Core>(std::move(options), std::move(handler));
  auto fail = [&listen, &ec](absl::string_view what) {
    return absl::UnavailableError(
        absl::StrCat("http: cannot ", what, " ", listen, ": ", ec.message()));
  };
  // The loops share the port through SO_REUSEPORT (the kernel spreads new
  // connections over them). SO_REUSEPORT would also let a second process of
  // the same user bind a port we hold, or we one it holds: a plain bind
  // first proves the port is free, and the plain probe a second server makes
  // fails against our listening sockets.
  for (int i = 0; i < threads; ++i) core->loops.push_back(std::make_unique<Loop>());
  if (endpoint.port() != 0) {
    internal::Acceptor probe(core->loops.front()->io.get_executor());
    probe.open(endpoint.protocol(), ec);
    if (ec) return fail("open a socket for");
    probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(endpoint, ec);
    if (ec) return fail("bind");
  }
  for (const auto& loop : core->loops) {
    internal::Acceptor& acceptor = loop->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (ec) return fail("open a socket for");
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) return fail("set SO_REUSEADDR for");
    acceptor.set_option(ReusePort(true), ec);
    if (ec) return fail("set SO_REUSEPORT for");
    acceptor.bind(endpoint, ec);
    if (ec) return fail("bind");
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen on");
    endpoint.port(acceptor.local_endpoint(ec).port());  // port 0: the chosen one
    if (ec) return fail("read the port of");
  }

  std::unique_ptr<Server> server(new Server(std::move(core)));
  server->port_ = endpoint.port();
  for (const auto& loop : server->core_->loops) {
    Loop* l = loop.get();
    asio::post(l->io, [s = server.get(), l] { s->Accept(*l); });
    server->threads_.emplace_back([l] { l->io.run(); });
  }
  return server;
}

Server::Server(std::unique_ptr<Core> core) : core_(std::move(core)) {}

Server::~Server() { Shutdown(); }

// Runs on `loop`'s thread.
void Server::Accept(Loop& loop) {
  loop.acceptor.async_accept(
      loop.peer,
      [this, &loop](boost::system::error_code ec, internal::Socket socket) {
        if (!loop.acceptor.is_open()) return;  // Shutdown closed it
        if (ec) {
          // Typically EMFILE: back off instead of spinning on the error.
          loop.retry.expires_after(std::chrono::milliseconds(50));
          loop.retry.async_wait([this, &loop](boost::system::error_code wait_ec) {
            if (!wait_ec && loop.acceptor.is_open()) Accept(loop);
          });
          return;
        }
        ServerContext& context = *core_->context;
        auto connection = std::make_shared<Connection>(std::move(socket),
                                                       loop.peer, core_->context);
        std::shared_ptr<Connection> evicted;
        switch (context.Admit(connection, &evicted)) {
          case ServerContext::Admission::kServe:
            if (evicted != nullptr) {
              context.Rejected("evicted_idle");
              evicted->ForceClose();
            }
            connection->Start();
            break;
          case ServerContext::Admission::kOverAddress:
            // Closed at once (the destructor closes the socket): answering
            // would cost the resources the cap protects.
            context.Rejected("over_address_cap");
            if (context.options.on_address_refused) {
              context.options.on_address_refused(connection->address());
            }
            break;
          case ServerContext::Admission::kOverTotal:
            if (context.rejecting.fetch_add(1) < context.options.max_connections) {
              connection->StartRejected();  // answers 503
            } else {
              // Even the 503 answers are at the cap: drop without a word.
              context.rejecting.fetch_sub(1);
              context.Rejected("over_capacity");
            }
            break;
        }
        Accept(loop);
      });
}

void Server::Shutdown() {
  std::call_once(shutdown_once_, [this] { ShutdownOnce(); });
}

void Server::ShutdownOnce() {
  for (const std::thread& thread : threads_) {
    UB_CHECK(thread.get_id() != std::this_thread::get_id());  // see header
  }
  ServerContext& context = *core_->context;
  const absl::Duration grace = context.options.shutdown_grace;
  context.draining.store(true);

  // 1. Stop accepting.
  for (const auto& loop : core_->loops) {
    auto closed = std::make_shared<absl::Notification>();
    asio::post(loop->io, [l = loop.get(), closed] {
      boost::system::error_code ec;
      l->acceptor.close(ec);
      l->retry.cancel();
      closed->Notify();
    });
    closed->WaitForNotificationWithTimeout(grace);
  }

  // 2. Close idle connections; let in-flight ones answer and close.
  for (const auto& connection : Snapshot(context)) connection->Drain();
  AwaitNoConnections(context, grace);

  // 3. Late answers are dropped from here on; close what is left.
  {
    absl::WriterMutexLock lock(&context.gate_mu);
    context.open = false;
  }
  for (const auto& connection : Snapshot(context)) connection->ForceClose();
  AwaitNoConnections(context, kForceCloseWait);

  // 4. Stop the threads, then free what the closed connections left behind.
  for (const auto& loop : core_->loops) {
    loop->work.reset();
    loop->io.stop();
  }
  for (std::thread& thread : threads_) thread.join();
  decltype(context.connections) leftover;
  {
    absl::MutexLock lock(&context.mu);
    leftover.swap(context.connections);
  }
}

}  // namespace uploadbroker::http
