// How the process's log lines look: `text` (spdlog's default pattern, for
// people) or `json` (one JSON object a line, for Loki, Elasticsearch and
// other pipelines that collect container output).
//
// A json line holds, in this order:
//   time    RFC 3339 UTC with microseconds, "2026-12-06T01:05:32.123456Z"
//   level   trace, debug, info, warning, error or critical
//   msg     the message; invalid UTF-8 is replaced by U+FFFD
//   logger  the spdlog logger's name, when it has one
//   source  "file:line", when the call site recorded it
//   thread  the OS thread id
// Strings are escaped by nlohmann-json, so a message with quotes, newlines or
// control characters still makes exactly one valid line.
//
// LogFormat is an absl flag type: --log-format=text|json; anything else is a
// flag error.
#ifndef UPLOADBROKER_RUNTIME_LOG_FORMAT_H_
#define UPLOADBROKER_RUNTIME_LOG_FORMAT_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "spdlog/formatter.h"

namespace uploadbroker::runtime {

enum class LogFormat { kText, kJson };

// Help text for the --log-format flag of every binary that has one.
inline constexpr char kLogFormatHelp[] =
    "Log line format: text (for people) or json (one JSON object a line: time, "
    "level, msg, "
    "thread)";

// Makes every spdlog logger of the process write `format`. Call from main
// before other threads log; kText leaves spdlog's default pattern (and gRPC
// writing its own lines to stderr). kJson also sends gRPC core's log lines
// (gpr_log: a port that cannot be bound, a broken connection) through spdlog,
// so they are JSON lines too: ERROR as error, INFO as info, DEBUG as debug,
// with their file:line as `source`.
void SetLogFormat(LogFormat format);

// The formatter behind kJson. Thread-compatible, as spdlog formatters are
// (each sink owns a clone and calls it under the sink's lock).
class JsonLogFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// absl flag marshalling.
bool AbslParseFlag(absl::string_view text, LogFormat* format,
                   std::string* error);
std::string AbslUnparseFlag(LogFormat format);

}  // namespace uploadbroker::runtime

#endif  // UPLOADBROKER_RUNTIME_LOG_FORMAT_H_
