// Request, Response and the handler contract of http::Server.
#ifndef UPLOADBROKER_HTTP_MESSAGE_H_
#define UPLOADBROKER_HTTP_MESSAGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace uploadbroker::http {

// Where a streamed request body goes instead of Request::body (see
// ServerOptions::stream_body). The server calls Write with each piece of the
// body in order, then Finish once when the whole body has arrived, all on the
// loop thread that reads the connection, so both must be quick (a local file
// write). A body that does not arrive whole (the client went away, a read
// timeout, more than max_bytes, a malformed chunk) ends with the sink
// released without Finish: it must then discard what it received.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // The largest body this request may carry; above it the server answers
  // 413 (a Content-Length over it is refused before any body byte is read).
  virtual uint64_t max_bytes() const = 0;
  // An error ends the request: the server answers 500 and closes.
  virtual absl::Status Write(absl::string_view piece) = 0;
  virtual absl::Status Finish() = 0;
};

// A fully received request. Nothing is decoded: the callback verifier signs
// the raw target, so it is kept exactly as it arrived.
struct Request {
  std::string method;     // e.g. "POST"
  std::string target;     // raw request-target: path + '?' + query
  std::string path_raw;   // target before the first '?'
  std::string query_raw;  // target after the first '?', without it
  std::vector<std::pair<std::string, std::string>> headers;  // wire order
  std::string body;  // empty when body_sink is set
  // The sink ServerOptions::stream_body chose for this request's body, after
  // its Finish succeeded; null when the body is in `body`.
  std::shared_ptr<BodySink> body_sink;
  std::string peer;        // "ip:port" of the client
  absl::Time received_at;  // when the last byte of the request was read

  // Value of the first header named `name` (case-insensitive); "" if absent.
  std::string Header(absl::string_view name) const;
};

// An answer body the server reads from an open file instead of
// Response::body (a GET of a large object): `size` bytes from offset 0,
// read and written a piece at a time. For an answer to a HEAD request `fd`
// may be -1: only `size` is used, as the Content-Length. The server closes
// `fd` when it is done with it.
struct FileBody {
  FileBody(int fd, uint64_t size) : fd(fd), size(size) {}
  ~FileBody();
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  const int fd;
  const uint64_t size;
};

struct Response {
  int status = 200;  // 200..599; anything else is a bug and aborts
  std::string content_type = "application/json";
  std::string body;
  // Extra headers. Content-Length, Content-Type and Connection are the
  // server's to set; entries with those names are ignored.
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body comes from this file and `body` must be empty.
  std::shared_ptr<FileBody> file;
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
