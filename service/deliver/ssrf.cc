#include "deliver/ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace uploadbroker::deliver {
namespace {

struct V4Range {
  uint32_t net;
  int bits;
  const char* what;
};

// Most specific first: the metadata addresses are named before their blocks.
constexpr V4Range kV4Forbidden[] = {
    {0xA9FEA9FE, 32, "the cloud metadata address"},             // 169.254.169.254
    {0x646464C8, 32, "the Alibaba Cloud metadata address"},     // 100.100.100.200
    {0x00000000, 8, "an unspecified (\"this network\") address"},
    {0x7F000000, 8, "a loopback address"},
    {0x0A000000, 8, "a private address"},
    {0xAC100000, 12, "a private address"},
    {0xC0A80000, 16, "a private address"},
    {0xA9FE0000, 16, "a link-local address"},
    {0x64400000, 10, "a shared (CGNAT) address"},
    {0xC0000000, 24, "an IETF protocol address"},
    {0xC6120000, 15, "a benchmarking address"},
    {0xE0000000, 4, "a multicast address"},
    {0xF0000000, 4, "a reserved or broadcast address"},
};

std::string V4Reason(uint32_t a) {  // host order
  for (const V4Range& r : kV4Forbidden) {
    const uint32_t mask = r.bits == 0 ? 0 : ~uint32_t{0} << (32 - r.bits);
    if ((a & mask) == r.net) {
      in_addr in;
      in.s_addr = htonl(a);
      char text[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &in, text, sizeof(text));
      return absl::StrCat(text, " is ", r.what);
    }
  }
  return "";
}

uint32_t V4At(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

std::string V6Reason(const in6_addr& a) {
  const uint8_t* b = a.s6_addr;
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &a, text, sizeof(text));
  auto is = [&](const char* what) { return absl::StrCat(text, " is ", what); };
  // Forms that carry an IPv4 address: judged by it.
  auto embedded = [&](const uint8_t* v4, const char* form) -> std::string {
    std::string r = V4Reason(V4At(v4));
    return r.empty() ? "" : absl::StrCat(text, " is ", form, " of ", r);
  };
  static constexpr uint8_t kZero[16] = {};
  if (std::memcmp(b, kZero, 16) == 0) return is("the unspecified address");
  if (IN6_IS_ADDR_LOOPBACK(&a)) return is("a loopback address");
  if (IN6_IS_ADDR_V4MAPPED(&a)) return embedded(b + 12, "the IPv4-mapped form");
  if (std::memcmp(b, kZero, 12) == 0) return embedded(b + 12, "the IPv4-compatible form");
  static constexpr uint8_t kNat64[12] = {0x00, 0x64, 0xff, 0x9b};
  if (std::memcmp(b, kNat64, 12) == 0) return embedded(b + 12, "the NAT64 form");
  if (b[0] == 0x20 && b[1] == 0x02) return embedded(b + 2, "the 6to4 form");
  if ((b[0] & 0xfe) == 0xfc) return is("a unique-local (private) address");
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return is("a link-local address");
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return is("a site-local (private) address");
  if (b[0] == 0xff) return is("a multicast address");
  return "";
}

}  // namespace

std::string ForbiddenAddressReason(const sockaddr* addr) {
  if (addr == nullptr) return "no address";
  if (addr->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return V4Reason(ntohl(in->sin_addr.s_addr));
  }
  if (addr->sa_family == AF_INET6) {
    return V6Reason(reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr);
  }
  return absl::StrCat("address family ", addr->sa_family, " is not IP");
}

std::string ForbiddenLiteralReason(absl::string_view host) {
  host = absl::StripPrefix(host, "[");
  host = absl::StripSuffix(host, "]");
  const std::string h(host);
  sockaddr_in v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return ForbiddenAddressReason(reinterpret_cast<const sockaddr*>(&v4));
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    return ForbiddenAddressReason(reinterpret_cast<const sockaddr*>(&v6));
  }
  return "";
}

}  // namespace uploadbroker::deliver
