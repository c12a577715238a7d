// Request, Response and the handler contract of http::Server.
#ifndef UPLOADBROKER_HTTP_MESSAGE_H_
#define UPLOADBROKER_HTTP_MESSAGE_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace uploadbroker::http {

// A fully received request. Nothing is decoded: the callback verifier signs
// the raw target, so it is kept exactly as it arrived.
struct Request {
  std::string method;     // e.g. "POST"
  std::string target;     // raw request-target: path + '?' + query
  std::string path_raw;   // target before the first '?'
  std::string query_raw;  // target after the first '?', without it
  std::vector<std::pair<std::string, std::string>> headers;  // wire order
  std::string body;
  std::string peer;        // "ip:port" of the client
  absl::Time received_at;  // when the last byte of the request was read

  // Value of the first header named `name` (case-insensitive); "" if absent.
  std::string Header(absl::string_view name) const;
};

struct Response {
  int status = 200;  // 200..599; anything else is a bug and aborts
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. Content-Length, Content-Type and Connection are the
  // server's to set; entries with those names are ignored.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends the answer. Call exactly once (a second call aborts), from any
// thread, at any time. Dropping every copy without calling it answers 500.
// After Server::Shutdown has returned, calling it does nothing.
using Responder = std::function<void(Response)>;

// Called on a server thread for each fully read request, one at a time per
// connection. Must not block: do slow work elsewhere and respond later.
using Handler = std::function<void(Request, Responder)>;

}  // namespace uploadbroker::http

#endif  // UPLOADBROKER_HTTP_MESSAGE_H_
