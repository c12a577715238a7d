// What the tests of the project's binaries share: waiting for a ready file,
// and reading a --log-format json stream line by line.
#ifndef UPLOADBROKER_TESTS_MAIN_BINARY_TEST_H_
#define UPLOADBROKER_TESTS_MAIN_BINARY_TEST_H_

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/subprocess.h"

namespace uploadbroker::testing {

// True once `path` exists, false if `process` exits first or a minute passes.
inline bool WaitForReadyFile(const std::string& path, Subprocess& process) {
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < until) {
    if (std::filesystem::exists(path)) return true;
    if (process.Wait(std::chrono::milliseconds(0)).has_value()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Each non-empty line of `text`, parsed; a test failure for each line that is
// not one JSON object with string time, level and msg and a numeric thread.
inline std::vector<nlohmann::json> JsonLogLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    nlohmann::json j =
        nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j["time"].is_string() || !j["level"].is_string() ||
        !j["msg"].is_string() || !j["thread"].is_number()) {
      ADD_FAILURE() << "not a JSON log line: " << line;
      continue;
    }
    lines.push_back(std::move(j));
  }
  return lines;
}

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_MAIN_BINARY_TEST_H_
