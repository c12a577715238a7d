#include "callback/body.h"

#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "callback/verifier.h"
#include "common/encoding.h"
#include "common/utf8.h"

namespace uploadbroker::callback {
namespace {

using Json = nlohmann::json;

// Every field we read, by its body name. `numeric`: OSS may send it as a JSON
// integer (oss-protocol.md §4.5 leaves numbers vs strings open).
struct FieldSpec {
  absl::string_view name;
  std::string CallbackFields::*member;  // Null for size (an integer).
  bool numeric;
};
constexpr FieldSpec kFields[] = {
    {"upload_id", &CallbackFields::upload_id, false},
    {"bucket", &CallbackFields::bucket, false},
    {"object", &CallbackFields::object, false},
    {"etag", &CallbackFields::etag, false},
    {"size", nullptr, true},
    {"mimeType", &CallbackFields::mime_type, false},
    {"crc64", &CallbackFields::crc64, true},
    {"contentMd5", &CallbackFields::content_md5, false},
    {"clientIp", &CallbackFields::client_ip, false},
    {"reqId", &CallbackFields::req_id, false},
    {"operation", &CallbackFields::operation, false},
    {"imageInfo.height", &CallbackFields::image_height, true},
    {"imageInfo.width", &CallbackFields::image_width, true},
    {"imageInfo.format", &CallbackFields::image_format, false},
};
constexpr absl::string_view kImageInfoPrefix = "imageInfo.";

const FieldSpec* FindField(absl::string_view name) {
  for (const FieldSpec& f : kFields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

absl::Status Invalid(absl::string_view field, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", reason));
}

// Untrusted names quoted in messages: escaped and capped.
std::string Shown(absl::string_view untrusted) {
  constexpr size_t kMax = 64;
  if (untrusted.size() <= kMax) return EscapeForDisplay(untrusted);
  return absl::StrCat(EscapeForDisplay(untrusted.substr(0, kMax)), "...");
}

// Known fields present in the body, as text; absent and null are missing.
using RawFields = std::map<absl::string_view, std::string>;

constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

// A JSON value seen where a known field belongs; text only for the kinds
// that can become a field.
struct JsonValue {
  enum Kind { kAbsent, kNull, kString, kUnsigned, kInteger, kObject, kOther };
  Kind kind = kAbsent;
  std::string text;
};

// nlohmann SAX handler: keeps only the values of known fields (top level,
// and inside a top-level "imageInfo" object) and the first duplicate key of
// any object, without building the document.
class FieldCollector final : public nlohmann::json_sax<Json> {
 public:
  // Known values, by index into kFields: at the top level, and inside
  // imageInfo (only the imageInfo.* fields).
  std::array<JsonValue, kFieldCount> top;
  std::array<JsonValue, kFieldCount> nested;
  JsonValue image_info;        // the top-level "imageInfo" value
  bool top_is_object = false;  // the document is an object
  std::string duplicate;       // first key given twice in one object

  bool null() override { return Scalar(JsonValue::kNull, ""); }
  bool boolean(bool) override { return Scalar(JsonValue::kOther, ""); }
  bool number_integer(number_integer_t v) override {
    return Scalar(JsonValue::kInteger, absl::StrCat(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    return Scalar(JsonValue::kUnsigned, absl::StrCat(v));
  }
  bool number_float(number_float_t, const string_t&) override {
    return Scalar(JsonValue::kOther, "");
  }
  bool string(string_t& v) override { return Scalar(JsonValue::kString, std::move(v)); }
  bool binary(binary_t&) override { return Scalar(JsonValue::kOther, ""); }
  bool start_object(std::size_t) override {
    Where where = Where::kOther;
    if (frames_.empty()) {
      top_is_object = true;
      where = Where::kTop;
    } else if (frames_.back().where == Where::kTop &&
               frames_.back().pending == kImageInfoKey) {
      where = Where::kImageInfo;
    }
    Scalar(JsonValue::kObject, "");
    frames_.emplace_back(true, where);
    return true;
  }
  bool key(string_t& k) override {
    Frame& frame = frames_.back();
    if (!frame.keys.insert(k).second && duplicate.empty()) duplicate = k;
    frame.pending = -1;
    if (frame.where == Where::kTop) {
      frame.pending = k == "imageInfo" ? kImageInfoKey : FieldIndex(k);
    } else if (frame.where == Where::kImageInfo) {
      frame.pending = FieldIndex(absl::StrCat(kImageInfoPrefix, k));
    }
    return true;
  }
  bool end_object() override {
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    Scalar(JsonValue::kOther, "");
    frames_.emplace_back(false, Where::kOther);
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  static constexpr int kImageInfoKey = -2;
  enum class Where { kTop, kImageInfo, kOther };
  struct Frame {
    Frame(bool o, Where w) : is_object(o), where(w) {}
    bool is_object;
    Where where;
    int pending = -1;  // kFields index (or kImageInfoKey) of the current key
    absl::flat_hash_set<std::string> keys;
  };

  static int FieldIndex(absl::string_view name) {
    for (size_t i = 0; i < kFieldCount; ++i) {
      if (kFields[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }

  // Where the value starting now is kept, or null if it is not wanted.
  JsonValue* Target() {
    if (frames_.empty() || !frames_.back().is_object) return nullptr;
    const Frame& frame = frames_.back();
    if (frame.where == Where::kTop && frame.pending == kImageInfoKey) {
      return &image_info;
    }
    if (frame.pending < 0) return nullptr;
    if (frame.where == Where::kTop) return &top[frame.pending];
    if (frame.where == Where::kImageInfo) return &nested[frame.pending];
    return nullptr;
  }
  // Keeps a value for the field it belongs to, if any.
  bool Scalar(JsonValue::Kind kind, std::string text) {
    JsonValue* target = Target();
    if (target != nullptr) *target = {kind, std::move(text)};
    return true;
  }

  std::vector<Frame> frames_;
};

absl::Status TakeJsonValue(const FieldSpec& field, const JsonValue& value,
                           RawFields& raw) {
  if (value.kind == JsonValue::kAbsent || value.kind == JsonValue::kNull) {
    return absl::OkStatus();
  }
  if (raw.count(field.name) != 0) return Invalid(field.name, "given twice");
  if (value.kind == JsonValue::kString ||
      (field.numeric && (value.kind == JsonValue::kUnsigned ||
                         value.kind == JsonValue::kInteger))) {
    raw[field.name] = value.text;
  } else if (field.member == nullptr) {
    return Invalid(field.name, "not a non-negative integer");
  } else {
    return Invalid(field.name,
                   field.numeric ? "not an integer or string" : "not a string");
  }
  return absl::OkStatus();
}

absl::StatusOr<RawFields> ReadJson(absl::string_view body) {
  FieldCollector collector;
  if (!Json::sax_parse(body.begin(), body.end(), &collector)) {
    return Invalid("body", "not valid JSON");
  }
  if (!collector.top_is_object) return Invalid("body", "not a JSON object");
  // Duplicate keys are refused rather than silently resolved.
  if (!collector.duplicate.empty()) {
    return Invalid(Shown(collector.duplicate), "given twice");
  }
  RawFields raw;
  for (size_t i = 0; i < kFieldCount; ++i) {
    absl::Status s = TakeJsonValue(kFields[i], collector.top[i], raw);
    if (!s.ok()) return s;
  }
  const JsonValue& image_info = collector.image_info;
  if (image_info.kind != JsonValue::kAbsent &&
      image_info.kind != JsonValue::kNull) {
    if (image_info.kind != JsonValue::kObject) {
      return Invalid("imageInfo", "not an object");
    }
    for (size_t i = 0; i < kFieldCount; ++i) {
      if (!absl::StartsWith(kFields[i].name, kImageInfoPrefix)) continue;
      absl::Status s = TakeJsonValue(kFields[i], collector.nested[i], raw);
      if (!s.ok()) return s;
    }
  }
  return raw;
}

absl::StatusOr<RawFields> ReadForm(absl::string_view body) {
  RawFields raw;
  for (absl::string_view pair : absl::StrSplit(body, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    absl::StatusOr<std::string> key =
        common::PercentDecode(kv.first, /*plus_is_space=*/true);
    if (!key.ok()) {
      return Invalid("body", absl::StrCat("bad percent escape in key '",
                                          Shown(kv.first), "'"));
    }
    const FieldSpec* field = FindField(*key);
    absl::StatusOr<std::string> value =
        common::PercentDecode(kv.second, /*plus_is_space=*/true);
    if (!value.ok()) {
      return Invalid(field ? field->name : Shown(*key), "bad percent escape");
    }
    if (field == nullptr) continue;
    if (!raw.emplace(field->name, *std::move(value)).second) {
      return Invalid(field->name, "given twice");
    }
  }
  return raw;
}

absl::StatusOr<CallbackFields> ToFields(RawFields raw) {
  for (absl::string_view name : {"upload_id", "bucket", "object", "size"}) {
    auto it = raw.find(name);
    if (it == raw.end()) return Invalid(name, "missing");
    if (it->second.empty()) return Invalid(name, "empty");
  }
  CallbackFields fields;
  const std::string& size = raw["size"];
  for (char c : size) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return Invalid("size", "not a non-negative integer");
    }
  }
  // Digits only, so SimpleAtoi fails only on overflow.
  if (!absl::SimpleAtoi(size, &fields.size))
    return Invalid("size", "out of range");
  for (const FieldSpec& field : kFields) {
    auto it = raw.find(field.name);
    if (field.member == nullptr || it == raw.end()) continue;
    if (!common::IsValidUtf8(it->second)) return Invalid(field.name, "not valid UTF-8");
    fields.*field.member = std::move(it->second);
  }
  return fields;
}

}  // namespace

absl::StatusOr<CallbackFields> ParseCallbackBody(absl::string_view content_type,
                                                 absl::string_view body) {
  absl::string_view media_type = absl::StripAsciiWhitespace(
      content_type.substr(0, content_type.find(';')));
  absl::StatusOr<RawFields> raw;
  if (absl::EqualsIgnoreCase(media_type, "application/json")) {
    raw = ReadJson(body);
  } else if (absl::EqualsIgnoreCase(media_type,
                                    "application/x-www-form-urlencoded")) {
    raw = ReadForm(body);
  } else if (media_type.empty()) {
    return Invalid("Content-Type", "missing");
  } else {
    return Invalid("Content-Type",
                   absl::StrCat("unsupported '", Shown(media_type), "'"));
  }
  if (!raw.ok()) return raw.status();
  return ToFields(*std::move(raw));
}

}  // namespace uploadbroker::callback
