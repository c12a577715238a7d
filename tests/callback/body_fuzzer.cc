// libFuzzer target for the callback parsers (build with -DUB_FUZZ=ON, clang).
// Input: '\0'-separated content type, body, query, Authorization,
// x-oss-pub-key-url and x-oss-signature-version (missing parts are empty).
// Findings are crashes, sanitizer reports and the invariants aborted on below.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "callback/body.h"
#include "callback/verifier.h"

namespace {

using uploadbroker::callback::EscapeForDisplay;
using uploadbroker::callback::ParseCallbackBody;
using uploadbroker::callback::StringToSign;
using uploadbroker::callback::Verifier;
using uploadbroker::callback::VerifyReport;

const Verifier& TheVerifier() {
  static const Verifier* const verifier = [] {
    absl::StatusOr<Verifier> v =
        Verifier::Create("/oss/%E5%9B%9E%E8%B0%83", {});
    if (!v.ok()) std::abort();
    return new Verifier(*std::move(v));
  }();
  return *verifier;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  // Fields separated by '\0': content type, body, query, authorization,
  // key URL, version. Missing ones are empty.
  std::vector<absl::string_view> parts =
      absl::StrSplit(input, absl::MaxSplits('\0', 5));
  parts.resize(6);
  absl::string_view content_type = parts[0], body = parts[1];

  absl::StatusOr<uploadbroker::callback::CallbackFields> fields =
      ParseCallbackBody(content_type, body);
  if (fields.ok() && (fields->size < 0 || fields->upload_id.empty() ||
                      fields->bucket.empty() || fields->object.empty())) {
    std::abort();  // Parser let a required field through.
  }
  // The same bytes through both known types, whatever the header said.
  (void)ParseCallbackBody("application/json", body);
  (void)ParseCallbackBody("application/x-www-form-urlencoded", body);

  const Verifier& verifier = TheVerifier();
  std::string to_sign = StringToSign(verifier.decoded_path(), parts[2], body);
  VerifyReport report =
      verifier.Explain(parts[2], body, parts[3], parts[4], parts[5]);
  if (report.string_to_sign != to_sign) std::abort();
  if (report.valid != report.failed_check.empty()) std::abort();
  std::string shown = EscapeForDisplay(report.string_to_sign);
  for (char c : shown) {
    if (c < 0x20 || c > 0x7e) std::abort();  // Escaped output is printable.
  }
  return 0;
}
