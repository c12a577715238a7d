#include "runtime/log_format.h"

#include <grpc/support/log.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace uploadbroker::runtime {

namespace {

// gpr_log's hook: called on whichever thread gRPC logs from.
void LogGrpcLine(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::debug;
  if (args->severity == GPR_LOG_SEVERITY_ERROR) level = spdlog::level::err;
  if (args->severity == GPR_LOG_SEVERITY_INFO) level = spdlog::level::info;
  spdlog::default_logger_raw()->log(
      spdlog::source_loc{args->file, args->line, ""}, level, "{}",
      args->message);
}

}  // namespace

void SetLogFormat(LogFormat format) {
  if (format != LogFormat::kJson) return;
  spdlog::set_formatter(std::make_unique<JsonLogFormatter>());
  gpr_set_log_function(&LogGrpcLine);
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg,
                              spdlog::memory_buf_t& dest) {
  nlohmann::ordered_json line;
  line["time"] = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%E6SZ", absl::FromChrono(msg.time), absl::UTCTimeZone());
  const spdlog::string_view_t level = spdlog::level::to_string_view(msg.level);
  line["level"] = std::string(level.data(), level.size());
  line["msg"] = std::string(msg.payload.data(), msg.payload.size());
  if (msg.logger_name.size() > 0) {
    line["logger"] =
        std::string(msg.logger_name.data(), msg.logger_name.size());
  }
  if (!msg.source.empty()) {
    line["source"] = std::string(msg.source.filename) + ":" +
                     std::to_string(msg.source.line);
  }
  line["thread"] = msg.thread_id;
  const std::string text = line.dump(-1, ' ', /*ensure_ascii=*/false,
                                     nlohmann::json::error_handler_t::replace);
  dest.append(text.data(), text.data() + text.size());
  dest.push_back('\n');
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

bool AbslParseFlag(absl::string_view text, LogFormat* format,
                   std::string* error) {
  if (text == "text") {
    *format = LogFormat::kText;
    return true;
  }
  if (text == "json") {
    *format = LogFormat::kJson;
    return true;
  }
  *error = "must be text or json";
  return false;
}

std::string AbslUnparseFlag(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

}  // namespace uploadbroker::runtime
