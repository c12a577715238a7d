// HttpRoutes: the broker's HTTP surface on one listener.
//
//   GET  /healthz  200 while the process runs
//   GET  /readyz   200 while the ledger accepts writes and the broker is not
//                  draining, else 503
//   GET  /metrics  Prometheus text format
//   POST <any>     OSS upload callback. Any path is accepted because the
//                  signature is checked against the configured public path,
//                  so an ingress that rewrites paths changes nothing.
//
// The routes are split (Expose): the public listener serves callbacks and
// health and answers /metrics 404 (saying it is on listen.admin); the admin
// listener serves health and /metrics and answers POST 405. Only
// listen.metrics_on_public_port: true puts everything on the public one.
// Thread-safe; referenced objects must outlive the returned handler.
#ifndef UPLOADBROKER_SERVER_HTTP_ROUTES_H_
#define UPLOADBROKER_SERVER_HTTP_ROUTES_H_

#include <atomic>

#include "http/message.h"
#include "ingest/callback_handler.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"

namespace uploadbroker::server {

enum class Expose {
  kEverything,          // one listener: callbacks, health, /metrics (explicit switch)
  kCallbacksAndHealth,  // the public listener, with or without an admin one
  kAdmin,               // the admin listener: health and /metrics
};

http::Handler MakeHttpRoutes(ingest::CallbackHandler& callbacks, ledger::Ledger& ledger,
                             const metrics::Registry& metrics,
                             const std::atomic<bool>& draining,
                             Expose expose = Expose::kEverything);

}  // namespace uploadbroker::server

#endif  // UPLOADBROKER_SERVER_HTTP_ROUTES_H_
