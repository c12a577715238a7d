#include "callback/body.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "callback/verifier.h"
#include "common/encoding.h"

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

// Hand-written because none of our libraries exposes a UTF-8 check (Abseil
// 20220623 keeps its UTF-8 code internal). Well-formed per Unicode 15 table
// 3-7: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // Range of the second byte.
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      unsigned char ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xbf) return false;
    }
    i += len;
  }
  return true;
}

// Known fields present in the body, as text; absent and null are missing.
using RawFields = std::map<absl::string_view, std::string>;

absl::Status TakeJsonValue(const FieldSpec& field, const Json& value,
                           RawFields& raw) {
  if (value.is_null()) return absl::OkStatus();
  if (raw.count(field.name) != 0) return Invalid(field.name, "given twice");
  if (value.is_string()) {
    raw[field.name] = value.get<std::string>();
  } else if (field.numeric && value.is_number_unsigned()) {
    raw[field.name] = absl::StrCat(value.get<uint64_t>());
  } else if (field.numeric && value.is_number_integer()) {
    raw[field.name] = absl::StrCat(value.get<int64_t>());
  } else if (field.member == nullptr) {
    return Invalid(field.name, "not a non-negative integer");
  } else {
    return Invalid(field.name,
                   field.numeric ? "not an integer or string" : "not a string");
  }
  return absl::OkStatus();
}

absl::StatusOr<RawFields> ReadJson(absl::string_view body) {
  // Duplicate keys are refused rather than silently resolved.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  Json::parser_callback_t on_event = [&](int /*depth*/,
                                         Json::parse_event_t event,
                                         Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && duplicate.empty() &&
               !open_objects.back().insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  Json json = Json::parse(body.begin(), body.end(), on_event,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) return Invalid("body", "not valid JSON");
  if (!json.is_object()) return Invalid("body", "not a JSON object");
  if (!duplicate.empty()) return Invalid(Shown(duplicate), "given twice");

  RawFields raw;
  for (const FieldSpec& field : kFields) {
    auto it = json.find(field.name);
    if (it != json.end()) {
      absl::Status s = TakeJsonValue(field, *it, raw);
      if (!s.ok()) return s;
    }
  }
  auto image_info = json.find("imageInfo");
  if (image_info != json.end() && !image_info->is_null()) {
    if (!image_info->is_object()) return Invalid("imageInfo", "not an object");
    for (const FieldSpec& field : kFields) {
      if (!absl::StartsWith(field.name, kImageInfoPrefix)) continue;
      auto it = image_info->find(field.name.substr(kImageInfoPrefix.size()));
      if (it != image_info->end()) {
        absl::Status s = TakeJsonValue(field, *it, raw);
        if (!s.ok()) return s;
      }
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
    if (!IsValidUtf8(it->second)) return Invalid(field.name, "not valid UTF-8");
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
