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

TEST(UbctlMain, HelpOffersTheKeyOffTheCommandLineAndExplainsResume) {
  Exited e = Subprocess::Run({UB_UBCTL_BIN, "--help"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out, HasSubstr("  --api-key-file=VALUE\n      File holding the API key"));
  EXPECT_THAT(e.out, HasSubstr("Visible to every local user in `ps`"));
  EXPECT_THAT(e.out, HasSubstr("--api-key-file or $UB_API_KEY (or --api-key, which `ps` shows"));
  EXPECT_THAT(e.out, HasSubstr("it bounds the whole upload, resumes included"));
  EXPECT_THAT(e.out, HasSubstr("  --state-file=VALUE\n"));
  EXPECT_THAT(e.out, HasSubstr("  multipart list [FILE]"));
  EXPECT_THAT(e.out, HasSubstr("  multipart abort UPLOAD_ID|FILE"));
  EXPECT_THAT(e.out, HasSubstr("kept only if their MD5 matches the file"));
}

// A bad --api-key-file is a usage error naming the flag and the path, before
// any call (no broker runs here); the key itself never appears in output.
TEST(UbctlMain, BadApiKeyFilesAreRefused) {
  testing::TempDir dir;
  struct Case {
    std::string path;
    std::string expect;
  };
  const std::string huge(64 * 1024 + 1, 'k');
  const std::vector<Case> cases = {
      {dir.File("missing"), "error: --api-key-file: cannot read '" + dir.File("missing") + "'"},
      {dir.path(), "error: --api-key-file: '" + dir.path() + "' is a directory"},
      {dir.WriteFile("empty", ""), "' is empty"},
      {dir.WriteFile("blank", " \n\n"), "' is empty"},
      {dir.WriteFile("huge", huge), "is larger than 65536 bytes"},
      {dir.WriteFile("two", "secret-one\nsecret-two\n"), "holds more than one line"},
  };
  for (const Case& c : cases) {
    Exited e = Subprocess::Run({UB_UBCTL_BIN, "--broker=127.0.0.1:1", "--api-key-file", c.path,
                                "list"});
    EXPECT_EQ(e.code, 2) << c.path << ": " << e.err;
    EXPECT_THAT(e.err, HasSubstr(c.expect)) << c.path;
    EXPECT_THAT(e.err, Not(HasSubstr("secret-"))) << c.path;
  }
  Exited both = Subprocess::Run({UB_UBCTL_BIN, "--api-key", "k", "--api-key-file",
                                 dir.WriteFile("k", "k\n"), "list"});
  EXPECT_EQ(both.code, 2);
  EXPECT_THAT(both.err, HasSubstr("error: give one of --api-key and --api-key-file"));
  // Exactly 64 KiB is still read (then refused by the broker, not here).
  Exited limit = Subprocess::Run({UB_UBCTL_BIN, "--broker=127.0.0.1:1", "--api-key-file",
                                  dir.WriteFile("limit", huge.substr(1)), "list"});
  EXPECT_EQ(limit.code, 1) << limit.err;
  EXPECT_THAT(limit.err, Not(HasSubstr("--api-key-file")));
}

}  // namespace
}  // namespace uploadbroker
