// Server: the whole broker in one object — credentials, ledger, issuer, the
// gRPC API (with health and reflection), the HTTP listener (OSS callbacks,
// /healthz, /readyz, /metrics) and the reconciler. `main` loads the config,
// turns flags into Options and waits.
//
// Create() either returns a running server or an error naming what failed
// (config field, ledger path, port in use). Shutdown() may be called from
// any thread, more than once; Wait() blocks until it completes.
//
// Threads the server owns besides its components': one that recomputes the
// `upload_broker_intents` gauge every `intents_gauge_refresh` (a COUNT over
// the intents table, which must not run on the HTTP event loop), so /metrics
// shows counts at most that old.
#ifndef UPLOADBROKER_SERVER_SERVER_H_
#define UPLOADBROKER_SERVER_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "config/config.h"

namespace uploadbroker::server {

struct Options {
  // The loaded configuration (config::LoadConfig); the server keeps a copy.
  config::Config config;
  // Time for issuance, credentials, the ledger and the reconciler. Null: the
  // system clock. Not owned; must outlive the server.
  common::Clock* clock = nullptr;
  // How stale the /metrics intents gauge may get.
  absl::Duration intents_gauge_refresh = absl::Seconds(10);
  // How often health Watch streams look at the ledger's health.
  absl::Duration health_poll = absl::Seconds(1);
};

// Longest Shutdown() takes: the HTTP grace (5 s) plus up to 1 s of forced
// closes, the stream grace (5 s; Watch and Subscribe streams whose client
// stopped reading are then cancelled) and the gRPC deadline (10 s) for
// unary calls, plus margin.
inline constexpr absl::Duration kDrainBound = absl::Seconds(30);

class Server {
 public:
  virtual ~Server() = default;
  static absl::StatusOr<std::unique_ptr<Server>> Create(Options options);

  // Ports actually bound (useful with ":0" in tests).
  virtual int grpc_port() const = 0;
  virtual int http_port() const = 0;
  // 0 when no admin listener is configured (listen.admin).
  virtual int admin_port() const = 0;

  // Applies the `callers` section of `fresh` (API key hashes and scopes)
  // atomically; nothing else of it takes effect before a restart. Refused
  // (InvalidArgument naming the caller, old callers kept) when a caller
  // names a bucket the running server does not have. Open Subscribe streams
  // whose credential the new callers revoke end with UNAUTHENTICATED, those
  // whose filter the new scope no longer covers with PERMISSION_DENIED,
  // before it returns (stream::EventStreamer::Recheck); in-flight unary
  // calls finish with the identity they started with. Any thread but a
  // gRPC reaction.
  virtual absl::Status ReloadCallers(const config::Config& fresh) = 0;

  // Reports not-ready (/readyz 503, health NOT_SERVING), stops accepting,
  // finishes in-flight callbacks and RPCs, ends streams with UNAVAILABLE.
  // Bounded even when stream clients stopped reading: see kDrainBound.
  virtual void Shutdown() = 0;
  virtual void Wait() = 0;
};

}  // namespace uploadbroker::server

#endif  // UPLOADBROKER_SERVER_SERVER_H_
