// ubctl as a user runs it: --help, --version, flags in kebab and snake case.
// verify-callback needs no broker, so it stands in for every command.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using testing::Exited;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Subprocess;

// The signed sample of OSS's Callback API reference.
constexpr char kAuthorization[] =
    "kKQeGTRccDKyHB3H9vF+xYMSrmhMZjzzl2/kdD1ktNVgbWEfYTQG0G2SU/"
    "RaHBovRCE8OkQDjC3uG33esH2txA==";
constexpr char kKeyUrl[] =
    "https://gosspublic.alicdn.com/callback_pub_key_v1.pem";

TEST(UbctlMain, HelpListsItsFlagsAndExitsZero) {
  Exited e = Subprocess::Run({UB_UBCTL_BIN, "--help"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out, HasSubstr("ubctl [flags] COMMAND [ARGS]\nCommands:\n"));
  EXPECT_THAT(e.out, HasSubstr("  --content-type=VALUE\n"
                               "      Content-Type (presign: required; policy: "
                               "comma-separated list)\n"));
  EXPECT_THAT(e.out, HasSubstr("  --cursor-file=VALUE\n"));
  EXPECT_THAT(e.out, HasSubstr("  --key-prefix=VALUE\n"));
  EXPECT_THAT(e.out, HasSubstr("  --presigned\n"));
  EXPECT_THAT(e.out, Not(HasSubstr("No flags matched")));
}

TEST(UbctlMain, VersionPrintsTheProjectVersion) {
  Exited e = Subprocess::Run({UB_UBCTL_BIN, "--version"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "ubctl " UB_VERSION "\n");
}

TEST(UbctlMain, KebabFlagsAreAccepted) {
  testing::TempDir dir;
  Exited e =
      Subprocess::Run({UB_UBCTL_BIN, "verify-callback", "--path-and-query",
                       "/index.php?id=1&index=2", "--authorization",
                       kAuthorization, "--pub-key-url", kKeyUrl, "--body-file",
                       dir.WriteFile("body", "bucket=yonghu-test")});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out, HasSubstr("valid"));
}

TEST(UbctlMain, SnakeFlagsAreAccepted) {
  testing::TempDir dir;
  Exited e = Subprocess::Run(
      {UB_UBCTL_BIN, "verify-callback",
       "--path_and_query=/index.php?id=1&index=2",
       "--authorization=" + std::string(kAuthorization),
       "--pub_key_url=" + std::string(kKeyUrl),
       "--body_file=" + dir.WriteFile("body", "bucket=yonghu-test")});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out, HasSubstr("valid"));
}

TEST(UbctlMain, UsageErrorsNameTheKebabFlag) {
  Exited e = Subprocess::Run(
      {UB_UBCTL_BIN, "verify-callback", "--path-and-query", "index.php"});
  EXPECT_EQ(e.code, 2);
  EXPECT_THAT(e.err, HasSubstr("--path-and-query must start with '/'"));
}

}  // namespace
}  // namespace uploadbroker
