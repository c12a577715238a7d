#include "config/reader.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace uploadbroker::config {

absl::Status Reader::Fail(absl::string_view field, absl::string_view reason) const {
  return absl::InvalidArgumentError(absl::StrCat(source_, ": ", field, ": ", reason));
}

absl::Status Reader::Wrap(const absl::Status& field_error) const {
  if (field_error.ok()) return field_error;
  return absl::Status(field_error.code(), absl::StrCat(source_, ": ", field_error.message()));
}

absl::Status Reader::Map(const YAML::Node& n, absl::string_view field, KnownKeys known) const {
  if (!n) return absl::OkStatus();
  if (!n.IsMap()) return Fail(field, "must be a map");
  const std::string prefix = field.empty() ? "" : absl::StrCat(field, ".");
  std::set<std::string> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) return Fail(field, "keys must be plain names");
    const std::string& key = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Fail(absl::StrCat(prefix, key), "unknown field");
    }
    if (!seen.insert(key).second) return Fail(absl::StrCat(prefix, key), "repeated field");
  }
  return absl::OkStatus();
}

absl::Status Reader::String(const YAML::Node& n, absl::string_view field, std::string* out,
                            bool required) const {
  if (!n) return required ? Fail(field, "required") : absl::OkStatus();
  if (!n.IsScalar()) return Fail(field, "must be a string");
  *out = n.Scalar();
  if (required && out->empty()) return Fail(field, "must not be empty");
  return absl::OkStatus();
}

absl::Status Reader::Int(const YAML::Node& n, absl::string_view field, int64_t* out) const {
  if (!n) return absl::OkStatus();
  try {
    *out = n.as<int64_t>();
  } catch (const YAML::Exception&) {
    return Fail(field, absl::StrCat("must be an integer, got '", n.IsScalar() ? n.Scalar() : "?", "'"));
  }
  return absl::OkStatus();
}

absl::Status Reader::Bool(const YAML::Node& n, absl::string_view field, bool* out) const {
  if (!n) return absl::OkStatus();
  try {
    *out = n.as<bool>();
  } catch (const YAML::Exception&) {
    return Fail(field, "must be true or false");
  }
  return absl::OkStatus();
}

absl::Status Reader::Duration(const YAML::Node& n, absl::string_view field,
                              absl::Duration* out) const {
  if (!n) return absl::OkStatus();
  if (!n.IsScalar() || !absl::ParseDuration(n.Scalar(), out) || *out <= absl::ZeroDuration()) {
    return Fail(field, "must be a positive duration such as 90s, 15m or 1h");
  }
  return absl::OkStatus();
}

absl::Status Reader::StringList(const YAML::Node& n, absl::string_view field,
                                std::vector<std::string>* out) const {
  if (!n) return absl::OkStatus();
  if (!n.IsSequence()) return Fail(field, "must be a list of strings");
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) return Fail(absl::StrCat(field, "[", i, "]"), "must be a string");
    out->push_back(n[i].Scalar());
  }
  return absl::OkStatus();
}

absl::Status Reader::StringMap(const YAML::Node& n, absl::string_view field,
                               std::map<std::string, std::string>* out) const {
  if (!n) return absl::OkStatus();
  if (!n.IsMap()) return Fail(field, "must be a map of strings");
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
      return Fail(absl::StrCat(field, ".", kv.first.IsScalar() ? kv.first.Scalar() : "?"),
                  "must be a string");
    }
    (*out)[kv.first.Scalar()] = kv.second.Scalar();
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::config
