// HttpRoutes: the broker's HTTP surface on one listener.
//
//   GET  /healthz  200 while the process runs
//   GET  /readyz   200 while the ledger accepts writes and the broker is not
//                  draining, else 503
//   GET  /metrics  Prometheus text format
//   POST <any>     OSS upload callback. Any path is accepted because the
//                  signature is checked against the configured public path,
//                  so an ingress that rewrites paths changes nothing.
// Thread-safe; referenced objects must outlive the returned handler.
#ifndef UPLOADBROKER_SERVER_HTTP_ROUTES_H_
#define UPLOADBROKER_SERVER_HTTP_ROUTES_H_

#include <atomic>

#include "http/message.h"
#include "ingest/callback_handler.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"

namespace uploadbroker::server {

http::Handler MakeHttpRoutes(ingest::CallbackHandler& callbacks, ledger::Ledger& ledger,
                             const metrics::Registry& metrics,
                             const std::atomic<bool>& draining);

}  // namespace uploadbroker::server

#endif  // UPLOADBROKER_SERVER_HTTP_ROUTES_H_
