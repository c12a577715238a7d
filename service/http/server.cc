#include "http/server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

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

// Declaration order is destruction order in reverse: the io_context goes
// last, destroying any handler (and the connection it holds) still queued.
struct Server::Core {
  Core(ServerOptions options, Handler handler, int threads)
      : context(std::make_shared<ServerContext>(std::move(options),
                                                std::move(handler))),
        io(threads),
        work(asio::make_work_guard(io)),
        acceptor(asio::make_strand(io)),
        retry(acceptor.get_executor()) {}

  std::shared_ptr<ServerContext> context;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  tcp::acceptor acceptor;  // used only on its strand
  asio::steady_timer retry;
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
  auto core =
      std::make_unique<Core>(std::move(options), std::move(handler), threads);
  auto fail = [&listen, &ec](absl::string_view what) {
    return absl::UnavailableError(
        absl::StrCat("http: cannot ", what, " ", listen, ": ", ec.message()));
  };
  core->acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  core->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR for");
  core->acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  core->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  const int port = core->acceptor.local_endpoint(ec).port();
  if (ec) return fail("read the port of");

  std::unique_ptr<Server> server(new Server(std::move(core)));
  server->port_ = port;
  asio::post(server->core_->acceptor.get_executor(),
             [s = server.get()] { s->Accept(); });
  for (int i = 0; i < threads; ++i) {
    server->threads_.emplace_back([c = server->core_.get()] { c->io.run(); });
  }
  return server;
}

Server::Server(std::unique_ptr<Core> core) : core_(std::move(core)) {}

Server::~Server() { Shutdown(); }

// Runs on the acceptor's strand.
void Server::Accept() {
  core_->acceptor.async_accept(
      asio::make_strand(core_->io),
      [this](boost::system::error_code ec, tcp::socket socket) {
        if (!core_->acceptor.is_open()) return;  // Shutdown closed it
        if (ec) {
          // Typically EMFILE: back off instead of spinning on the error.
          core_->retry.expires_after(std::chrono::milliseconds(50));
          core_->retry.async_wait([this](boost::system::error_code wait_ec) {
            if (!wait_ec && core_->acceptor.is_open()) Accept();
          });
          return;
        }
        ServerContext& context = *core_->context;
        const int limit = context.options.max_connections;
        auto connection =
            std::make_shared<Connection>(std::move(socket), core_->context);
        bool serve = false;
        {
          absl::MutexLock lock(&context.mu);
          if (context.connections.size() < static_cast<size_t>(limit)) {
            serve = true;
            context.connections.emplace(connection.get(), connection);
          }
        }
        if (serve) {
          connection->Start();
        } else if (context.rejecting.fetch_add(1) < limit) {
          connection->StartRejected();  // answers 503
        } else {
          // Even the 503 answers are at the cap: drop without a word.
          context.rejecting.fetch_sub(1);
          context.Rejected("over_capacity");
        }
        Accept();
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
  auto closed = std::make_shared<absl::Notification>();
  asio::post(core_->acceptor.get_executor(), [this, closed] {
    boost::system::error_code ec;
    core_->acceptor.close(ec);
    core_->retry.cancel();
    closed->Notify();
  });
  closed->WaitForNotificationWithTimeout(grace);

  // 2. Close idle connections; let in-flight ones answer and close.
  for (const auto& connection : Snapshot(context)) connection->Drain();
  AwaitNoConnections(context, grace);

  // 3. Late answers are dropped from here on; close what is left.
  {
    absl::MutexLock lock(&context.mu);
    context.open = false;
  }
  for (const auto& connection : Snapshot(context)) connection->ForceClose();
  AwaitNoConnections(context, kForceCloseWait);

  // 4. Stop the threads, then free what the closed connections left behind.
  core_->work.reset();
  core_->io.stop();
  for (std::thread& thread : threads_) thread.join();
  decltype(context.connections) leftover;
  {
    absl::MutexLock lock(&context.mu);
    leftover.swap(context.connections);
  }
}

}  // namespace uploadbroker::http
