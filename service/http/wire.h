// Internal to http::Server: an answer serialized into the one buffer the
// connection writes. Not part of the component's interface.
#ifndef UPLOADBROKER_HTTP_WIRE_H_
#define UPLOADBROKER_HTTP_WIRE_H_

#include <string>

#include "http/message.h"

namespace uploadbroker::http::internal {

// Status line, headers and body of `response` as HTTP/1.x bytes:
//  - `version` is 10 or 11 (the request's);
//  - Content-Type when set; the handler's extra headers, except the ones the
//    server owns (Content-Length, Content-Type, Connection,
//    Transfer-Encoding); a header with a CR or LF aborts (no injection);
//  - Content-Length always (the body's length, or the FileBody's size, also
//    for HEAD), except for
//    204 and 304, which carry neither a length nor a body;
//  - "Connection: close" on an HTTP/1.1 answer that ends the connection,
//    "Connection: keep-alive" on an HTTP/1.0 answer that keeps it;
//  - the body, unless `head_request` (a FileBody is the caller's to send).
// `response.status` must be 200..599 (aborts otherwise).
std::string SerializeResponse(const Response& response, unsigned version,
                              bool keep_alive, bool head_request);

}  // namespace uploadbroker::http::internal

#endif  // UPLOADBROKER_HTTP_WIRE_H_
