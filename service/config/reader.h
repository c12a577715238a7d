// Reader: typed, strict access to a YAML config tree for config.cc. Every
// error is InvalidArgument "<source>: <field path>: <reason>"; field paths
// are written like "callers[0].key_prefixes[1]". yaml-cpp reports through
// exceptions; the caller (ParseConfig) catches them. Not thread-safe; one
// Reader per parse.
#ifndef UPLOADBROKER_CONFIG_READER_H_
#define UPLOADBROKER_CONFIG_READER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "yaml-cpp/yaml.h"

namespace uploadbroker::config {

// The keys one YAML mapping accepts. Each mapping of the config has its own
// list, next to the code that reads it, so adding a setting is one entry.
using KnownKeys = absl::Span<const absl::string_view>;

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  absl::Status Fail(absl::string_view field, absl::string_view reason) const;
  // A shared check's "<field>: <reason>" error with the source put first;
  // OK stays OK.
  absl::Status Wrap(const absl::Status& field_error) const;

  // OK when `n` is absent, or a mapping whose keys are all in `known`, each
  // once. Otherwise names the first unknown or repeated key
  // ("<field>.<key>: unknown field") or says `field` must be a map. Called
  // for every mapping, so a misspelt key never passes silently.
  absl::Status Map(const YAML::Node& n, absl::string_view field, KnownKeys known) const;

  // Each reader leaves *out unchanged when `n` is absent (unless required).
  absl::Status String(const YAML::Node& n, absl::string_view field, std::string* out,
                      bool required = false) const;
  absl::Status Int(const YAML::Node& n, absl::string_view field, int64_t* out) const;
  absl::Status Bool(const YAML::Node& n, absl::string_view field, bool* out) const;
  // Durations are written like "15m", "1h", "90s" (absl::ParseDuration), > 0.
  absl::Status Duration(const YAML::Node& n, absl::string_view field, absl::Duration* out) const;
  absl::Status StringList(const YAML::Node& n, absl::string_view field,
                          std::vector<std::string>* out) const;
  absl::Status StringMap(const YAML::Node& n, absl::string_view field,
                         std::map<std::string, std::string>* out) const;

 private:
  std::string source_;
};

}  // namespace uploadbroker::config

#endif  // UPLOADBROKER_CONFIG_READER_H_
