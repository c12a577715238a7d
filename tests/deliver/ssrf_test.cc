#include "deliver/ssrf.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::deliver {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

struct Case {
  const char* address;
  const char* reason;  // empty: allowed
};

class LiteralTest : public ::testing::TestWithParam<Case> {};

TEST_P(LiteralTest, ReasonNamesTheRange) {
  if (GetParam().reason[0] == '\0') {
    EXPECT_THAT(ForbiddenLiteralReason(GetParam().address), IsEmpty());
  } else {
    EXPECT_THAT(ForbiddenLiteralReason(GetParam().address), HasSubstr(GetParam().reason));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ssrf, LiteralTest,
    ::testing::Values(Case{"127.0.0.1", "127.0.0.1 is a loopback address"},
                      Case{"127.255.1.2", "loopback"},
                      Case{"169.254.169.254", "169.254.169.254 is the cloud metadata address"},
                      Case{"169.254.1.1", "link-local"},
                      Case{"100.100.100.200", "the Alibaba Cloud metadata address"},
                      Case{"100.64.0.1", "shared (CGNAT)"},
                      Case{"100.127.255.255", "shared (CGNAT)"},
                      Case{"10.1.2.3", "10.1.2.3 is a private address"},
                      Case{"172.16.0.1", "private"},
                      Case{"172.31.255.255", "private"},
                      Case{"192.168.0.10", "private"},
                      Case{"0.0.0.0", "unspecified"},
                      Case{"224.0.0.1", "multicast"},
                      Case{"255.255.255.255", "broadcast"},
                      Case{"::1", "::1 is a loopback address"},
                      Case{"[::1]", "loopback"},
                      Case{"::", "unspecified"},
                      Case{"fe80::1", "link-local"},
                      Case{"fc00::1", "unique-local"},
                      Case{"fd00:ec2::254", "unique-local"},
                      Case{"ff02::1", "multicast"},
                      Case{"::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1 is a loopback"},
                      Case{"::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254"},
                      Case{"::ffff:10.0.0.1", "IPv4-mapped"},
                      Case{"::127.0.0.1", "IPv4-compatible"},
                      Case{"64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"},
                      Case{"2002:7f00:1::", "6to4 form of 127.0.0.1"},
                      // Public: allowed.
                      Case{"8.8.8.8", ""}, Case{"100.63.255.255", ""}, Case{"100.128.0.0", ""},
                      Case{"172.32.0.1", ""}, Case{"2606:4700::1111", ""},
                      Case{"::ffff:8.8.8.8", ""}, Case{"2002:0808:0808::", ""},
                      // Names are checked once resolved, at connection time.
                      Case{"hooks.example.com", ""}, Case{"localhost", ""}),
    [](const ::testing::TestParamInfo<Case>& info) { return "n" + std::to_string(info.index); });

TEST(ForbiddenAddressReason, RefusesNonIpFamilies) {
  sockaddr sa{};
  sa.sa_family = AF_UNIX;
  EXPECT_THAT(ForbiddenAddressReason(&sa), HasSubstr("is not IP"));
  EXPECT_THAT(ForbiddenAddressReason(nullptr), HasSubstr("no address"));
}

}  // namespace
}  // namespace uploadbroker::deliver
