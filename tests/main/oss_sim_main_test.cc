// oss-sim as a user runs it: --help, --version, flags in kebab and snake
// case, --log-format json.
#include <csignal>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/main/binary_test.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::Contains;
using testing::Exited;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::Subprocess;

// Starts oss-sim on port 0 with `flags` spelled as given, waits for its
// ready file, stops it with SIGTERM and returns how it ended.
Exited ServeAndStop(const std::vector<std::string>& names,
                    const std::string& log_format) {
  testing::TempDir dir;
  const std::string ready = dir.File("ready.json");
  // names: listen, data dir, key id, key secret, ready file, log format.
  Subprocess sim({UB_OSS_SIM_BIN, names[0], "127.0.0.1:0", names[1],
                  dir.File("data"), names[2], "LTAI5tTestId", names[3],
                  "test-secret", names[4], ready, names[5], log_format});
  EXPECT_TRUE(testing::WaitForReadyFile(ready, sim)) << sim.StderrSoFar();
  sim.Signal(SIGTERM);
  std::optional<Exited> exited = sim.Wait();
  return exited.has_value() ? *exited
                            : Exited{-1, "", "did not stop within 60 s"};
}

TEST(OssSimMain, HelpListsItsFlagsAndExitsZero) {
  Exited e = Subprocess::Run({UB_OSS_SIM_BIN, "--help"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out,
              HasSubstr("  --access-key-id=VALUE\n"
                        "      The AccessKey id the simulator accepts\n"));
  EXPECT_THAT(e.out,
              HasSubstr("  --data-dir=VALUE  (default: oss-sim-data)\n"));
  EXPECT_THAT(e.out, HasSubstr("  --log-format=VALUE"));
}

TEST(OssSimMain, VersionPrintsTheProjectVersion) {
  Exited e = Subprocess::Run({UB_OSS_SIM_BIN, "--version"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "oss-sim " UB_VERSION "\n");
}

TEST(OssSimMain, KebabFlagsServe) {
  Exited e =
      ServeAndStop({"--listen", "--data-dir", "--access-key-id",
                    "--access-key-secret", "--ready-file", "--log-format"},
                   "text");
  EXPECT_EQ(e.code, 0) << e.err << e.out;
  EXPECT_THAT(e.out, HasSubstr("oss-sim serving on 127.0.0.1:"));
}

TEST(OssSimMain, SnakeFlagsServe) {
  Exited e =
      ServeAndStop({"--listen", "--data_dir", "--access_key_id",
                    "--access_key_secret", "--ready_file", "--log_format"},
                   "text");
  EXPECT_EQ(e.code, 0) << e.err << e.out;
  EXPECT_THAT(e.out, HasSubstr("oss-sim serving on 127.0.0.1:"));
}

TEST(OssSimMain, JsonLogsAreOneObjectALine) {
  Exited e =
      ServeAndStop({"--listen", "--data-dir", "--access-key-id",
                    "--access-key-secret", "--ready-file", "--log-format"},
                   "json");
  EXPECT_EQ(e.code, 0) << e.err;
  std::vector<nlohmann::json> lines = testing::JsonLogLines(e.out + e.err);
  ASSERT_GE(lines.size(), 2u) << e.out;
  std::vector<std::string> messages;
  for (const nlohmann::json& line : lines) messages.push_back(line["msg"]);
  EXPECT_THAT(messages, Contains(StartsWith("oss-sim serving on 127.0.0.1:")));
  EXPECT_THAT(messages, Contains("received signal 15, stopping"));
}

}  // namespace
}  // namespace uploadbroker
