// ParseListen: validates a listen address before anything is bound.
#include <boost/asio/ip/address.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "http/server.h"

namespace uploadbroker::http {

absl::StatusOr<std::pair<std::string, int>> ParseListen(
    absl::string_view listen) {
  auto error = [listen](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address \"", listen, "\": ", why));
  };
  std::string host;
  absl::string_view port_text;
  boost::system::error_code ec;
  if (absl::StartsWith(listen, "[")) {
    size_t close = listen.find(']');
    if (close == absl::string_view::npos) return error("missing ']'");
    host = std::string(listen.substr(1, close - 1));
    absl::string_view rest = listen.substr(close + 1);
    if (!absl::StartsWith(rest, ":")) return error("missing ':port' after ']'");
    port_text = rest.substr(1);
    boost::asio::ip::make_address_v6(host, ec);
    if (ec) return error(absl::StrCat("\"", host, "\" is not an IPv6 address"));
  } else {
    size_t colon = listen.rfind(':');
    if (colon == absl::string_view::npos) return error("missing ':port'");
    host = std::string(listen.substr(0, colon));
    port_text = listen.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return error("IPv6 addresses must be bracketed, e.g. [::1]:8080");
    }
    if (host.empty()) {
      return error("missing host; use 0.0.0.0 for all interfaces");
    }
    if (host != "localhost") {
      boost::asio::ip::make_address_v4(host, ec);
      if (ec) {
        return error(absl::StrCat("host \"", host,
                                  "\" is not an IPv4 address, a bracketed "
                                  "IPv6 address or localhost"));
      }
    }
  }
  if (port_text.empty()) return error("missing port");
  int port = 0;
  bool digits = port_text.size() <= 5;
  for (char c : port_text) digits = digits && absl::ascii_isdigit(c);
  if (!digits || !absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return error(
        absl::StrCat("port \"", port_text, "\" is not a number in 0..65535"));
  }
  return std::make_pair(host, port);
}

}  // namespace uploadbroker::http
