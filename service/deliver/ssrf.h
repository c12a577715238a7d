// SSRF rules for push targets: which addresses a webhook may be delivered
// to. Pure functions; thread-safe.
//
// A target URL comes from the config only. Unless the target sets
// allow_private_addresses, an address is refused when it is (IPv4, and the
// same IPv4 seen through IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d,
// NAT64 64:ff9b::/96 and 6to4 2002::/16 IPv6 forms):
//   unspecified 0.0.0.0/8, ::          loopback 127.0.0.0/8, ::1
//   private 10/8, 172.16/12, 192.168/16, unique-local fc00::/7, site-local fec0::/10
//   link-local 169.254.0.0/16 (169.254.169.254: cloud metadata), fe80::/10
//   shared/CGNAT 100.64.0.0/10 (100.100.100.200: Alibaba Cloud metadata)
//   IETF 192.0.0.0/24, benchmarking 198.18.0.0/15, reserved 240.0.0.0/4,
//   broadcast, multicast 224.0.0.0/4, ff00::/8
//
// DNS rebinding: the check runs on the socket address libcurl is about to
// connect to (CURLOPT_OPENSOCKETFUNCTION, webhook_client.cc), for every new
// connection, after resolution; there is no earlier "check the name, then
// let curl resolve it again" window for a rebinding DNS server to use.
#ifndef UPLOADBROKER_DELIVER_SSRF_H_
#define UPLOADBROKER_DELIVER_SSRF_H_

#include <sys/socket.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::deliver {

// Empty when a target may connect to `addr` (AF_INET or AF_INET6);
// otherwise why not, e.g. "127.0.0.1 is a loopback address". Any other
// family is refused.
std::string ForbiddenAddressReason(const sockaddr* addr);

// The same for a numeric address written as text ("10.0.0.1", "::1",
// "[::1]"); empty too when `host` is not a numeric address (a name is
// checked once resolved, at connection time).
std::string ForbiddenLiteralReason(absl::string_view host);

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_SSRF_H_
