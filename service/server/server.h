// Server: the whole broker in one object — config, credentials, ledger,
// issuer, the gRPC API (with health and reflection) and, once added, the
// HTTP listener. `main` only turns flags into Options and waits.
//
// Create() either returns a running server or an error naming what failed
// (config file and field, ledger path, port in use). Shutdown() may be called
// from any thread once; Wait() blocks until it completes.
#ifndef UPLOADBROKER_SERVER_SERVER_H_
#define UPLOADBROKER_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "config/config.h"

namespace uploadbroker::server {

struct Options {
  std::string config_path;
};

class Server {
 public:
  virtual ~Server() = default;
  static absl::StatusOr<std::unique_ptr<Server>> Create(const Options& options);

  // Ports actually bound (useful with ":0" in tests).
  virtual int grpc_port() const = 0;
  virtual int http_port() const = 0;

  // Stops accepting, finishes in-flight work, ends streams with UNAVAILABLE.
  virtual void Shutdown() = 0;
  virtual void Wait() = 0;
};

}  // namespace uploadbroker::server

#endif  // UPLOADBROKER_SERVER_SERVER_H_
