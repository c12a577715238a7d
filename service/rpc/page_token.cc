#include "rpc/page_token.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace uploadbroker::rpc {
namespace {

constexpr absl::string_view kVersion = "p1.";

absl::Status Garbled() {
  return absl::InvalidArgumentError(
      "page_token: not a token from ListUploads (pass next_page_token unchanged)");
}

bool IsUploadIdChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

}  // namespace

std::string EncodePageToken(absl::string_view last_upload_id) {
  std::string encoded;
  absl::WebSafeBase64Escape(last_upload_id, &encoded);
  return absl::StrCat(kVersion, encoded);
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view token) {
  // Base64 of the longest id, plus the version.
  if (token.size() > kVersion.size() + (kMaxTokenUploadIdBytes * 4 + 2) / 3 ||
      !absl::ConsumePrefix(&token, kVersion)) {
    return Garbled();
  }
  std::string id;
  if (token.empty() || !absl::WebSafeBase64Unescape(token, &id) || id.empty() ||
      id.size() > kMaxTokenUploadIdBytes) {
    return Garbled();
  }
  for (char c : id) {
    if (!IsUploadIdChar(c)) return Garbled();
  }
  // Only the canonical encoding: one token per position.
  if (EncodePageToken(id) != absl::StrCat(kVersion, token)) return Garbled();
  return id;
}

absl::Status StalePageToken() {
  return absl::InvalidArgumentError(
      "page_token: the listing it continues no longer exists (its last upload is gone or "
      "not readable by this caller); list again from the start");
}

}  // namespace uploadbroker::rpc
