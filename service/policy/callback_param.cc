#include "policy/callback_param.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/encoding.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::policy {
namespace {

constexpr size_t kMaxUploadIdLength = 128;

// OSS system variables in body order; each is also its JSON member name.
constexpr absl::string_view kSystemVariables[] = {
    "bucket",
    "object",
    "etag",
    "size",
    "mimeType",
    "imageInfo.height",
    "imageInfo.width",
    "imageInfo.format",
    "crc64",
    "contentMd5",
    "clientIp",
    "reqId",
    "operation",
};

}  // namespace

bool IsValidUploadId(absl::string_view upload_id) {
  if (upload_id.empty() || upload_id.size() > kMaxUploadIdLength) return false;
  return std::all_of(upload_id.begin(), upload_id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Written by hand, not with nlohmann::json: the unquoted ${...} placeholders
// make the template invalid JSON, and the id needs no escaping (checked).
std::string CallbackBodyTemplate(absl::string_view upload_id) {
  UB_CHECK(IsValidUploadId(upload_id));
  std::string body = absl::StrCat("{\"upload_id\":\"", upload_id, "\"");
  for (absl::string_view name : kSystemVariables) {
    absl::StrAppend(&body, ",\"", name, "\":${", name, "}");
  }
  body.push_back('}');
  return body;
}

namespace {

// The parameter's JSON text, before base64.
std::string CallbackParamJson(absl::string_view callback_url,
                              absl::string_view upload_id) {
  UB_CHECK(!callback_url.empty());
  UB_CHECK(std::all_of(callback_url.begin(), callback_url.end(),
                       [](char c) { return c > ' ' && c < 0x7f; }));
  nlohmann::ordered_json param = nlohmann::ordered_json::object();
  param["callbackUrl"] = std::string(callback_url);
  param["callbackBody"] = CallbackBodyTemplate(upload_id);
  param["callbackBodyType"] = kCallbackBodyType;
  // Cannot throw: every string is checked ASCII above.
  return param.dump();
}

}  // namespace

std::string BuildCallbackParam(absl::string_view callback_url,
                               absl::string_view upload_id) {
  return common::Base64Encode(CallbackParamJson(callback_url, upload_id));
}

CallbackParamBuilder::CallbackParamBuilder(absl::string_view callback_url) {
  const std::string a = CallbackParamJson(callback_url, "a");
  const std::string b = CallbackParamJson(callback_url, "b");
  UB_CHECK(a.size() == b.size());
  const size_t at = static_cast<size_t>(
      std::mismatch(a.begin(), a.end(), b.begin()).first - a.begin());
  UB_CHECK(at < a.size());
  UB_CHECK(a.compare(at + 1, std::string::npos, b, at + 1, std::string::npos) == 0);
  head_ = a.substr(0, at);
  tail_ = a.substr(at + 1);
}

std::string CallbackParamBuilder::Build(absl::string_view upload_id) const {
  UB_CHECK(IsValidUploadId(upload_id));
  return common::Base64Encode(absl::StrCat(head_, upload_id, tail_));
}

}  // namespace uploadbroker::policy
