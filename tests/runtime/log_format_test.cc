#include "runtime/log_format.h"

#include <regex>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "spdlog/details/log_msg.h"

namespace uploadbroker::runtime {
namespace {

nlohmann::json Format(const spdlog::details::log_msg& msg) {
  JsonLogFormatter formatter;
  spdlog::memory_buf_t buf;
  formatter.format(msg, buf);
  std::string line(buf.data(), buf.size());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1)
      << "one line per message: " << line;
  return nlohmann::json::parse(line);
}

TEST(JsonLogFormatter, HasTheFieldsLogPipelinesRead) {
  spdlog::details::log_msg msg("", spdlog::level::warn, "ledger slow");
  nlohmann::json line = Format(msg);
  EXPECT_EQ(line["level"], "warning");
  EXPECT_EQ(line["msg"], "ledger slow");
  EXPECT_TRUE(line["thread"].is_number_unsigned());
  EXPECT_FALSE(line.contains("logger"));
  EXPECT_FALSE(line.contains("source"));
  const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  EXPECT_TRUE(std::regex_match(line["time"].get<std::string>(), rfc3339))
      << line["time"];
}

TEST(JsonLogFormatter, EscapesWhatTheMessageHolds) {
  const std::string text = "path \"a\\b\"\nnext\tline \x01 caf\xc3\xa9";
  spdlog::details::log_msg msg("", spdlog::level::err, text);
  EXPECT_EQ(Format(msg)["msg"], text);
}

TEST(JsonLogFormatter, ReplacesInvalidUtf8) {
  spdlog::details::log_msg msg("", spdlog::level::info, "bad \xff byte");
  EXPECT_EQ(Format(msg)["msg"], "bad \xef\xbf\xbd byte");
}

TEST(JsonLogFormatter, NamesLoggerAndSource) {
  spdlog::details::log_msg msg(spdlog::source_loc{"server.cc", 42, "Start"},
                               "http", spdlog::level::info, "up");
  nlohmann::json line = Format(msg);
  EXPECT_EQ(line["logger"], "http");
  EXPECT_EQ(line["source"], "server.cc:42");
}

TEST(LogFormatFlag, AcceptsTextAndJsonOnly) {
  LogFormat format = LogFormat::kText;
  std::string error;
  EXPECT_TRUE(AbslParseFlag("json", &format, &error));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_EQ(AbslUnparseFlag(format), "json");
  EXPECT_TRUE(AbslParseFlag("text", &format, &error));
  EXPECT_EQ(format, LogFormat::kText);
  EXPECT_FALSE(AbslParseFlag("xml", &format, &error));
  EXPECT_EQ(error, "must be text or json");
}

}  // namespace
}  // namespace uploadbroker::runtime
