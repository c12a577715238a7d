#include "runtime/cli.h"

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(std::string, content_type, "", "Content-Type of the upload");
ABSL_FLAG(std::string, key_prefix, "uploads/",
          "Prefix the key must start with");
ABSL_FLAG(bool, dry_run, false, "Print what would be done");

namespace uploadbroker::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Normalize(std::vector<const char*> argv) {
  return NormalizeFlagNames(argv);
}

TEST(NormalizeFlagNames, KebabNamesBecomeSnake) {
  EXPECT_THAT(
      Normalize({"ubctl", "--content-type", "text/plain", "--key-prefix=a-b/"}),
      ElementsAre("ubctl", "--content_type", "text/plain",
                  "--key_prefix=a-b/"));
}

TEST(NormalizeFlagNames, SnakeNamesStay) {
  EXPECT_THAT(Normalize({"ubctl", "--content_type=text/plain", "--dry_run"}),
              ElementsAre("ubctl", "--content_type=text/plain", "--dry_run"));
}

TEST(NormalizeFlagNames, ValuesAreNeverChanged) {
  // A non-bool flag without '=' takes the next argument, even one that
  // starts with "--"; a bool flag does not.
  EXPECT_THAT(Normalize({"ubctl", "--key-prefix", "--odd-prefix-", "--dry-run",
                         "--x-y"}),
              ElementsAre("ubctl", "--key_prefix", "--odd-prefix-", "--dry_run",
                          "--x_y"));
}

TEST(NormalizeFlagNames, OnlyDoubleDashArgsBeforeABareDoubleDash) {
  EXPECT_THAT(Normalize({"ubctl", "get", "up-1", "-content-type", "--",
                         "--content-type"}),
              ElementsAre("ubctl", "get", "up-1", "-content-type", "--",
                          "--content-type"));
}

TEST(NormalizeFlagNames, NoPrefixNegatesABool) {
  EXPECT_THAT(Normalize({"ubctl", "--no-dry-run", "--no-such-flag"}),
              ElementsAre("ubctl", "--nodry_run", "--no_such_flag"));
}

TEST(HelpText, ListsTheFileFlagsKebabWithMeaning) {
  const std::string help =
      HelpText({"ubctl", "ubctl [flags] COMMAND", __FILE__});
  EXPECT_THAT(help, testing::StartsWith("ubctl [flags] COMMAND\n"));
  EXPECT_THAT(
      help,
      HasSubstr("  --content-type=VALUE\n      Content-Type of the upload\n"));
  EXPECT_THAT(help, HasSubstr("  --key-prefix=VALUE  (default: uploads/)\n"));
  EXPECT_THAT(help, HasSubstr("  --dry-run\n      Print what would be done\n"));
  EXPECT_THAT(help, HasSubstr("--version"));
  EXPECT_THAT(
      help,
      Not(HasSubstr("flagfile")));  // absl's own flags are not the program's
}

TEST(HelpText, OtherFilesFlagsAreLeftOut) {
  const std::string help = HelpText({"x", "x", "service/main/other_main.cc"});
  EXPECT_THAT(help, Not(HasSubstr("content-type")));
}

TEST(NormalizeSourcePath, RelativeToTheSourceTree) {
  EXPECT_EQ(NormalizeSourcePath("../../../service/main/broker_main.cc"),
            "service/main/broker_main.cc");
  EXPECT_EQ(NormalizeSourcePath("./client/ubctl_main.cc"),
            "client/ubctl_main.cc");
  EXPECT_EQ(NormalizeSourcePath(__FILE__), "tests/runtime/cli_test.cc");
  EXPECT_EQ(NormalizeSourcePath(NormalizeSourcePath(__FILE__)),
            "tests/runtime/cli_test.cc");
}

}  // namespace
}  // namespace uploadbroker::runtime
