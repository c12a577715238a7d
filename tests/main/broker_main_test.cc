// upload-broker as a user runs it: --help, --version, flags in kebab and
// snake case, --log-format json.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/main/binary_test.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::Contains;
using testing::Exited;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using testing::Subprocess;

// A config with a ledger and credentials in `dir`, listening for HTTP on
// port 0 and for gRPC on `grpc`.
std::string WriteConfig(const testing::TempDir& dir,
                        const std::string& grpc = "127.0.0.1:0") {
  return dir.WriteFile(
      "broker.yaml",
      absl::StrCat(
          "listen: {grpc: \"", grpc,
          "\", http: \"127.0.0.1:0\"}\n"
          "callback: {url: \"https://broker.example.com/oss/callback\"}\n"
          "ledger: {path: ",
          dir.File("ledger.db"),
          "}\n"
          "credentials: {access_key_id_file: ",
          dir.WriteFile("ak", "LTAI5tTestId"),
          ", access_key_secret_file: ", dir.WriteFile("sk", "test-secret"),
          "}\n"
          "buckets: [{name: bkt, region: cn-hangzhou, endpoint: "
          "\"https://oss-cn-hangzhou.aliyuncs.com\"}]\n"
          "callers: [{name: app, api_key_sha256: ",
          std::string(64, 'a'), ", buckets: [bkt]}]\n"));
}

// Starts the broker with `flags` plus --config, waits until its ready file
// (named by `ready_flag`) appears, stops it with SIGTERM and returns how it
// ended.
Exited ServeAndStop(const std::string& ready_flag,
                    std::vector<std::string> flags) {
  testing::TempDir dir;
  const std::string ready = dir.File("ready.json");
  std::vector<std::string> args = {UB_BROKER_BIN, "--config", WriteConfig(dir),
                                   ready_flag, ready};
  args.insert(args.end(), flags.begin(), flags.end());
  Subprocess broker(args);
  EXPECT_TRUE(testing::WaitForReadyFile(ready, broker)) << broker.StderrSoFar();
  broker.Signal(SIGTERM);
  std::optional<Exited> exited = broker.Wait();
  return exited.has_value() ? *exited
                            : Exited{-1, "", "did not stop within 60 s"};
}

TEST(BrokerMain, HelpListsItsFlagsAndExitsZero) {
  for (const char* help : {"--help", "-h"}) {
    Exited e = testing::Subprocess::Run({UB_BROKER_BIN, help});
    EXPECT_EQ(e.code, 0) << help << e.err;
    EXPECT_THAT(e.out, HasSubstr("upload-broker --config FILE"));
    EXPECT_THAT(e.out,
                HasSubstr("  --config=VALUE  (default: upload-broker.yaml)\n"
                          "      Path of the YAML config file\n"));
    EXPECT_THAT(e.out, HasSubstr("  --ready-file=VALUE\n"));
    EXPECT_THAT(e.out, HasSubstr("  --log-format=VALUE  (default: text)\n"));
    EXPECT_THAT(e.out, Not(HasSubstr("No flags matched")));
    EXPECT_THAT(e.out, Not(HasSubstr("--flagfile")));
  }
}

TEST(BrokerMain, VersionPrintsTheProjectVersion) {
  Exited e = testing::Subprocess::Run({UB_BROKER_BIN, "--version"});
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_EQ(e.out, "upload-broker " UB_VERSION "\n");
}

TEST(BrokerMain, UnknownFlagExitsOne) {
  Exited e = testing::Subprocess::Run({UB_BROKER_BIN, "--no-such-flag=1"});
  EXPECT_EQ(e.code, 1);
  EXPECT_THAT(e.err, HasSubstr("no_such_flag"));
}

TEST(BrokerMain, BadLogFormatIsAFlagError) {
  Exited e = testing::Subprocess::Run({UB_BROKER_BIN, "--log-format=xml"});
  EXPECT_EQ(e.code, 1);
  EXPECT_THAT(e.err, HasSubstr("must be text or json"));
}

TEST(BrokerMain, KebabFlagsServe) {
  Exited e = ServeAndStop("--ready-file", {"--log-format", "text"});
  EXPECT_EQ(e.code, 0) << e.err << e.out;
  EXPECT_THAT(e.out, HasSubstr("stopped"));
}

TEST(BrokerMain, SnakeFlagsServe) {
  Exited e = ServeAndStop("--ready_file", {"--log_format=text"});
  EXPECT_EQ(e.code, 0) << e.err << e.out;
  EXPECT_THAT(e.out, HasSubstr("stopped"));
}

TEST(BrokerMain, JsonLogsAreOneObjectALine) {
  Exited e = ServeAndStop("--ready-file", {"--log-format=json"});
  EXPECT_EQ(e.code, 0) << e.err;
  std::vector<nlohmann::json> lines = testing::JsonLogLines(e.out + e.err);
  ASSERT_GE(lines.size(), 3u) << e.out;
  std::vector<std::string> messages;
  for (const nlohmann::json& line : lines) messages.push_back(line["msg"]);
  EXPECT_THAT(messages, Contains(StartsWith("gRPC API listening on port ")));
  EXPECT_THAT(messages, Contains("stopped"));
}

TEST(BrokerMain, JsonLogEscapesAnyMessage) {
  // The startup error quotes the config path: quotes, a newline, a tab, a
  // backslash and a byte that is not UTF-8 must not break the line.
  const std::string path = "/nonexistent/a\"b\\c\td\ne\xff.yaml";
  Exited e = testing::Subprocess::Run(
      {UB_BROKER_BIN, "--log-format=json", "--config", path});
  EXPECT_EQ(e.code, 2);
  std::vector<nlohmann::json> critical;
  for (nlohmann::json& line : testing::JsonLogLines(e.out + e.err)) {
    if (line["level"] == "critical") critical.push_back(std::move(line));
  }
  ASSERT_EQ(critical.size(), 1u) << e.out << e.err;
  EXPECT_THAT(critical[0]["msg"].get<std::string>(),
              HasSubstr("/nonexistent/a\"b\\c\td\ne\xef\xbf\xbd.yaml"));
}

TEST(BrokerMain, JsonLogsIncludeGrpcCoreLines) {
  // A gRPC port already taken: gRPC core logs the bind error itself.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  testing::TempDir dir;
  const std::string taken = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  Exited e = Subprocess::Run({UB_BROKER_BIN, "--log-format=json", "--config",
                              WriteConfig(dir, taken)});
  close(fd);
  EXPECT_EQ(e.code, 2);
  std::vector<std::string> errors;
  for (const nlohmann::json& line : testing::JsonLogLines(e.out + e.err)) {
    if (line["level"] == "error") errors.push_back(line["msg"]);
  }
  EXPECT_THAT(errors, Contains(HasSubstr("Address already in use")))
      << e.out << e.err;
}

// A connection string libpq cannot parse (a bad percent escape in the
// password) or cannot use: the broker refuses to start, says why, and
// neither its log nor its error carries the password (#17, low item).
TEST(BrokerMain, ABadPostgresDsnNeverShowsThePassword) {
  for (const std::string& dsn : {std::string("postgresql://u:s3cr%zzet@host/db"),
                                std::string("password=s3cret host=/nonexistent dbname=x")}) {
    testing::TempDir dir;
    std::string config = WriteConfig(dir);
    std::string text;
    {
      std::ifstream in(config);
      std::stringstream s;
      s << in.rdbuf();
      text = s.str();
    }
    const size_t at = text.find("ledger: {path: ");
    text.replace(at, text.find('\n', at) - at,
                 absl::StrCat("ledger: {postgres: {dsn_file: ", dir.WriteFile("dsn", dsn), "}}"));
    dir.WriteFile("broker.yaml", text);
    for (const char* format : {"--log-format=text", "--log-format=json"}) {
      Exited e = Subprocess::Run({UB_BROKER_BIN, format, "--config", config});
      EXPECT_NE(e.code, 0) << dsn;
      EXPECT_THAT(e.out + e.err, HasSubstr("ledger.postgres")) << dsn;
      EXPECT_THAT(e.out + e.err, Not(HasSubstr("s3cr"))) << e.out << e.err;
      EXPECT_THAT(e.out + e.err, Not(HasSubstr("zzet"))) << e.out << e.err;
    }
  }
}

}  // namespace
}  // namespace uploadbroker
