// Verifier: decides whether a callback request was signed by OSS
// (oss-protocol.md §5.2-§5.3, §6). Pure: never does network I/O, never
// fetches a key; keys are OSS's pinned v1 key plus operator-configured ones.
//
// Immutable after Create(); Verify() and Explain() may run on any number of
// threads at once.
#ifndef UPLOADBROKER_CALLBACK_VERIFIER_H_
#define UPLOADBROKER_CALLBACK_VERIFIER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "callback/public_key.h"

namespace uploadbroker::callback {

// The two exact key URLs OSS uses. Both map to OssPinnedKey() and nothing else.
inline constexpr absl::string_view kOssKeyUrlHttp =
    "http://gosspublic.alicdn.com/callback_pub_key_v1.pem";
inline constexpr absl::string_view kOssKeyUrlHttps =
    "https://gosspublic.alicdn.com/callback_pub_key_v1.pem";

// decoded_path + ("?" + raw_query if raw_query is non-empty) + "\n" + body.
// `raw_query` is the query exactly as received, without its '?'. (A request
// target ending in a bare '?' cannot be told apart from no query here.)
std::string StringToSign(absl::string_view decoded_path,
                         absl::string_view raw_query, absl::string_view body);

// A key the operator trusts in addition to OSS's (e.g. the oss-sim key),
// matched by exact URL.
struct TrustedKey {
  std::string url;
  PublicKey key;
};

// What Explain() found, for `ubctl verify-callback`.
struct VerifyReport {
  bool valid = false;
  std::string failed_check;    // The failing check's message; empty if valid.
  std::string string_to_sign;  // Raw bytes; print with EscapeForDisplay().
};

class Verifier {
 public:
  // `configured_path` is the public callback URL path as configured (what
  // OSS requested and signed, not what an ingress forwarded), e.g.
  // "/oss/%E5%9B%9E%E8%B0%83". It is percent-decoded once here ('+' stays
  // '+'). InvalidArgument if it does not start with '/', carries a '?' or
  // '#', or has a bad escape; or if an extra key has an empty URL, one of
  // OSS's URLs, or a URL listed twice.
  static absl::StatusOr<Verifier> Create(absl::string_view configured_path,
                                         std::vector<TrustedKey> extra);

  // Checks, in order, and returns the first failure (the message names it):
  //  1. signature version header empty (absent) or exactly "1.0"
  //     -> InvalidArgument;
  //  2. pub_key_url_b64 present (Unauthenticated), strict base64
  //     (InvalidArgument), and decodes to kOssKeyUrlHttp/Https or an extra
  //     key's URL (PermissionDenied "x-oss-pub-key-url not allowed: <url>");
  //  3. authorization_b64 present (Unauthenticated) and strict base64
  //     (InvalidArgument);
  //  4. RSA-MD5 signature over StringToSign(decoded_path(), raw_query, body)
  //     by that URL's key -> Unauthenticated.
  // Header values are as received (the caller trims optional whitespace);
  // `body` is the raw body bytes.
  absl::Status Verify(absl::string_view raw_query, absl::string_view body,
                      absl::string_view authorization_b64,
                      absl::string_view pub_key_url_b64,
                      absl::string_view signature_version_header) const;

  // Same checks as Verify(), reported for a human.
  VerifyReport Explain(absl::string_view raw_query, absl::string_view body,
                       absl::string_view authorization_b64,
                       absl::string_view pub_key_url_b64,
                       absl::string_view signature_version_header) const;

  const std::string& decoded_path() const { return decoded_path_; }

 private:
  Verifier(std::string decoded_path, std::vector<TrustedKey> extra)
      : decoded_path_(std::move(decoded_path)), extra_(std::move(extra)) {}

  absl::Status Check(absl::string_view string_to_sign,
                     absl::string_view authorization_b64,
                     absl::string_view pub_key_url_b64,
                     absl::string_view signature_version_header) const;

  std::string decoded_path_;
  std::vector<TrustedKey> extra_;
};

// C-style escapes for display and logs: \n \r \t \\ as such, other bytes
// outside printable ASCII as \xHH. One line, safe to log untrusted bytes.
std::string EscapeForDisplay(absl::string_view bytes);

}  // namespace uploadbroker::callback

#endif  // UPLOADBROKER_CALLBACK_VERIFIER_H_
