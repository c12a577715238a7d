#include "server/http_routes.h"

namespace uploadbroker::server {
namespace {

http::Response Json(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

http::Handler MakeHttpRoutes(ingest::CallbackHandler& callbacks, ledger::Ledger& ledger,
                             const metrics::Registry& metrics,
                             const std::atomic<bool>& draining, Expose expose) {
  return [&callbacks, &ledger, &metrics, &draining, expose](http::Request req,
                                                            http::Responder respond) {
    if (req.method == "POST" && expose == Expose::kAdmin) {
      respond(Json(405, R"({"error":"method","reason":"the admin listener serves only GET and HEAD"})"));
      return;
    }
    if (req.method == "POST") {
      callbacks.Handle(std::move(req), std::move(respond));
      return;
    }
    if (req.method != "GET" && req.method != "HEAD") {
      respond(Json(405, R"({"error":"method","reason":"only GET, HEAD and POST are served"})"));
      return;
    }
    if (req.path_raw == "/healthz") {
      respond(Json(200, R"({"status":"ok"})"));
    } else if (req.path_raw == "/readyz") {
      bool ready = !draining.load() && ledger.Healthy();
      respond(ready ? Json(200, R"({"status":"ready"})")
                    : Json(503, R"({"status":"not ready"})"));
    } else if (req.path_raw == "/metrics" && expose != Expose::kCallbacksAndHealth) {
      http::Response r;
      r.content_type = metrics::Registry::kContentType;
      r.body = metrics.Render();
      respond(std::move(r));
    } else if (req.path_raw == "/metrics") {
      respond(Json(404, R"({"error":"not_found","reason":"/metrics is served on listen.admin only"})"));
    } else {
      respond(Json(404, R"({"error":"not_found","reason":"no such path"})"));
    }
  };
}

}  // namespace uploadbroker::server
