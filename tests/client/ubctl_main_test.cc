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

TEST(UbctlMain, HelpListsTheTlsFlags) {
  Exited e = Subprocess::Run({UB_UBCTL_BIN, "--help"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out, HasSubstr("  --tls\n      Connect to the broker over TLS"));
  EXPECT_THAT(e.out, HasSubstr("  --ca=VALUE\n"));
  EXPECT_THAT(e.out, HasSubstr("  --cert=VALUE\n"));
  EXPECT_THAT(e.out, HasSubstr("  --cert-key=VALUE\n"));
}

TEST(UbctlMain, UnreadableTlsFilesAreUsageErrorsNamingTheFlag) {
  testing::TempDir dir;
  Exited ca = Subprocess::Run({UB_UBCTL_BIN, "--ca", dir.File("missing.pem"), "list"});
  EXPECT_EQ(ca.code, 2);
  EXPECT_THAT(ca.err, HasSubstr("error: --ca: cannot read '"));
  Exited half = Subprocess::Run({UB_UBCTL_BIN, "--cert", dir.WriteFile("c.pem", "x"), "list"});
  EXPECT_EQ(half.code, 2);
  EXPECT_THAT(half.err, HasSubstr("error: --cert and --cert-key go together"));
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
