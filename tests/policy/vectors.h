// Test helpers: the ali-oss 6.23.0 vectors (tests/data) and small parsers.
#ifndef UPLOADBROKER_TESTS_POLICY_VECTORS_H_
#define UPLOADBROKER_TESTS_POLICY_VECTORS_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::policy::testing {

// The whole vectors file, members in file order; aborts the test binary if it
// cannot be read.
const nlohmann::ordered_json& Vectors();

// "2025-01-02T03:04:05.000Z" -> absl::Time; aborts on a malformed string.
absl::Time ParseIso(absl::string_view text);

// Splits "scheme://host/path?query" into the part before '?' and the query
// parameters with percent-decoded names and values.
struct ParsedUrl {
  std::string base;
  std::map<std::string, std::string> query;
};
ParsedUrl ParseUrl(absl::string_view url);

}  // namespace uploadbroker::policy::testing

#endif  // UPLOADBROKER_TESTS_POLICY_VECTORS_H_
