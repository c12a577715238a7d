#include "vectors.h"

#include <fstream>

#include "absl/strings/str_split.h"
#include "common/check.h"
#include "common/encoding.h"

namespace uploadbroker::policy::testing {

const nlohmann::ordered_json& Vectors() {
  static const nlohmann::ordered_json* vectors = [] {
    std::ifstream in(UB_TEST_DATA_DIR "/ali-oss-6.23.0.json");
    UB_CHECK(in.good());
    auto* json = new nlohmann::ordered_json(
        nlohmann::ordered_json::parse(in, nullptr, false));
    UB_CHECK(!json->is_discarded());
    return json;
  }();
  return *vectors;
}

absl::Time ParseIso(absl::string_view text) {
  absl::Time t;
  std::string error;
  UB_CHECK(absl::ParseTime(absl::RFC3339_full, text, &t, &error));
  return t;
}

ParsedUrl ParseUrl(absl::string_view url) {
  ParsedUrl out;
  size_t question = url.find('?');
  out.base = std::string(url.substr(0, question));
  if (question == absl::string_view::npos) return out;
  for (absl::string_view part :
       absl::StrSplit(url.substr(question + 1), '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    auto name = common::PercentDecode(kv.first, false);
    auto value = common::PercentDecode(kv.second, false);
    UB_CHECK(name.ok() && value.ok());
    UB_CHECK(out.query.count(*name) == 0);  // No repeated parameter.
    out.query[*name] = *value;
  }
  return out;
}

}  // namespace uploadbroker::policy::testing
