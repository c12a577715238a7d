#include "http/wire.h"

#include <boost/beast/http/status.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace uploadbroker::http::internal {
namespace {

namespace bhttp = boost::beast::http;

bool IsServerOwnedHeader(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "content-length") ||
         absl::EqualsIgnoreCase(name, "content-type") ||
         absl::EqualsIgnoreCase(name, "connection") ||
         absl::EqualsIgnoreCase(name, "transfer-encoding");
}

bool HasLineBreak(absl::string_view text) {
  return text.find_first_of("\r\n") != absl::string_view::npos;
}

}  // namespace

std::string SerializeResponse(const Response& response, unsigned version,
                              bool keep_alive, bool head_request) {
  UB_CHECK(response.status >= 200 && response.status <= 599);
  const unsigned status = static_cast<unsigned>(response.status);
  const bool no_body = status == 204 || status == 304;
  std::string out;
  out.reserve(128 + response.body.size());
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  absl::StrAppend(&out, "HTTP/", version / 10, ".", version % 10, " ", status,
                  " ", absl::string_view(reason.data(), reason.size()), "\r\n");
  if (!response.content_type.empty()) {
    UB_CHECK(!HasLineBreak(response.content_type));
    absl::StrAppend(&out, "Content-Type: ", response.content_type, "\r\n");
  }
  for (const auto& [name, value] : response.headers) {
    UB_CHECK(!HasLineBreak(name) && !HasLineBreak(value));  // no injection
    if (!IsServerOwnedHeader(name)) absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (!no_body) {
    absl::StrAppend(&out, "Content-Length: ",
                    response.file != nullptr ? response.file->size : response.body.size(),
                    "\r\n");
  }
  if (version >= 11 && !keep_alive) out += "Connection: close\r\n";
  if (version < 11 && keep_alive) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  if (!no_body && !head_request) out += response.body;  // a FileBody follows
  return out;
}

}  // namespace uploadbroker::http::internal
