#include "callback/verifier.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/encoding.h"

namespace uploadbroker::callback {
namespace {

// Untrusted values quoted in error messages: escaped and capped.
constexpr size_t kMaxShown = 256;
std::string Shown(absl::string_view untrusted) {
  if (untrusted.size() <= kMaxShown) return EscapeForDisplay(untrusted);
  return absl::StrCat(EscapeForDisplay(untrusted.substr(0, kMaxShown)), "...");
}

bool IsOssKeyUrl(absl::string_view url) {
  return url == kOssKeyUrlHttp || url == kOssKeyUrlHttps;
}

}  // namespace

std::string StringToSign(absl::string_view decoded_path,
                         absl::string_view raw_query, absl::string_view body) {
  if (raw_query.empty()) return absl::StrCat(decoded_path, "\n", body);
  return absl::StrCat(decoded_path, "?", raw_query, "\n", body);
}

absl::StatusOr<Verifier> Verifier::Create(absl::string_view configured_path,
                                          std::vector<TrustedKey> extra) {
  if (configured_path.empty() || configured_path.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "callback path must start with '/': '", Shown(configured_path), "'"));
  }
  if (configured_path.find_first_of("?#") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("callback path must not carry a query or fragment: '",
                     Shown(configured_path), "'"));
  }
  absl::StatusOr<std::string> decoded =
      common::PercentDecode(configured_path, /*plus_is_space=*/false);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("callback path: ", decoded.status().message(), ": '",
                     Shown(configured_path), "'"));
  }
  for (size_t i = 0; i < extra.size(); ++i) {
    const std::string& url = extra[i].url;
    if (url.empty()) {
      return absl::InvalidArgumentError("trusted key: empty URL");
    }
    if (IsOssKeyUrl(url)) {
      return absl::InvalidArgumentError(
          absl::StrCat("trusted key: ", url,
                       " is OSS's URL; only the pinned key may use it"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (extra[j].url == url) {
        return absl::InvalidArgumentError(
            absl::StrCat("trusted key: URL listed twice: ", Shown(url)));
      }
    }
  }
  return Verifier(*std::move(decoded), std::move(extra));
}

absl::Status Verifier::Check(absl::string_view string_to_sign,
                             absl::string_view authorization_b64,
                             absl::string_view pub_key_url_b64,
                             absl::string_view signature_version_header) const {
  if (!signature_version_header.empty() && signature_version_header != "1.0") {
    return absl::InvalidArgumentError(
        absl::StrCat("x-oss-signature-version unsupported: '",
                     Shown(signature_version_header), "'"));
  }

  if (pub_key_url_b64.empty()) {
    return absl::UnauthenticatedError("x-oss-pub-key-url: missing");
  }
  absl::StatusOr<std::string> url = common::Base64Decode(pub_key_url_b64);
  if (!url.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "x-oss-pub-key-url: not base64 (", url.status().message(), ")"));
  }
  const PublicKey* key = nullptr;
  if (IsOssKeyUrl(*url)) {
    key = &OssPinnedKey();
  } else {
    for (const TrustedKey& trusted : extra_) {
      if (trusted.url == *url) key = &trusted.key;
    }
  }
  if (key == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("x-oss-pub-key-url not allowed: ", Shown(*url)));
  }

  if (authorization_b64.empty()) {
    return absl::UnauthenticatedError("Authorization: missing");
  }
  absl::StatusOr<std::string> signature =
      common::Base64Decode(authorization_b64);
  if (!signature.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Authorization: not base64 (", signature.status().message(), ")"));
  }

  absl::Status verified = key->VerifyMd5(string_to_sign, *signature);
  if (!verified.ok()) {
    return absl::Status(
        verified.code(),
        absl::StrCat(verified.message(), " with the key of ", Shown(*url)));
  }
  return absl::OkStatus();
}

absl::Status Verifier::Verify(
    absl::string_view raw_query, absl::string_view body,
    absl::string_view authorization_b64, absl::string_view pub_key_url_b64,
    absl::string_view signature_version_header) const {
  return Check(StringToSign(decoded_path_, raw_query, body), authorization_b64,
               pub_key_url_b64, signature_version_header);
}

VerifyReport Verifier::Explain(
    absl::string_view raw_query, absl::string_view body,
    absl::string_view authorization_b64, absl::string_view pub_key_url_b64,
    absl::string_view signature_version_header) const {
  VerifyReport report;
  report.string_to_sign = StringToSign(decoded_path_, raw_query, body);
  absl::Status status = Check(report.string_to_sign, authorization_b64,
                              pub_key_url_b64, signature_version_header);
  report.valid = status.ok();
  report.failed_check = std::string(status.message());
  return report;
}

std::string EscapeForDisplay(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(static_cast<char>(c));
        } else {
          absl::StrAppend(&out, "\\x", absl::BytesToHexString(bytes.substr(i, 1)));
        }
    }
  }
  return out;
}

}  // namespace uploadbroker::callback
