// libFuzzer target for ingest::CallbackHandler (build with -DUB_FUZZ=ON,
// clang) over a real ledger; see tests/ingest/fuzz_harness.h.
//
// Input: one flag byte, then '\0'-separated method, content type, body,
// query, Authorization, x-oss-pub-key-url and x-oss-signature-version
// (missing parts are empty). Flag bit 0: sign the request with the harness
// key (Authorization and key URL computed, the input's ignored), so valid
// signatures reach the body parser, the intent checks and the ledger.
//
// Findings: crashes, sanitizer reports, a handler that never answers, and
// these invariants (abort): the status is 200..599 and the body is JSON; a
// 200 only for a POST the verifier accepts, with the application/json body
// type the broker issues, whose body parses, for an object the (fake)
// confirmer finds in bucket "b", answering with exactly that body's
// upload_id, bucket, object, size and etag (a repeat too); a 409 (the
// callback does not match an upload) is always the one rejection body, so
// it never tells what the bucket holds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tests/ingest/fuzz_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using uploadbroker::fuzz::CallbackHarness;
  if (size == 0) return 0;
  const bool sign = (data[0] & 1) != 0;
  absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string> parts = absl::StrSplit(input, absl::MaxSplits('\0', 6));
  parts.resize(7);
  CallbackHarness& harness = CallbackHarness::Get();

  uploadbroker::http::Request req;
  req.method = parts[0].empty() ? "POST" : parts[0];
  req.path_raw = "/cb";
  req.query_raw = parts[3];
  req.target = parts[3].empty() ? req.path_raw : req.path_raw + "?" + parts[3];
  req.body = parts[2];
  req.peer = "127.0.0.1:1";
  req.received_at = absl::Now();
  std::string authorization = sign ? harness.Authorization(parts[3], parts[2]) : parts[4];
  std::string key_url = sign ? CallbackHarness::KeyUrlHeader() : parts[5];
  req.headers = {{"Content-Type", parts[1]},
                 {"Authorization", authorization},
                 {"x-oss-pub-key-url", key_url}};
  if (!parts[6].empty()) req.headers.emplace_back("x-oss-signature-version", parts[6]);

  uploadbroker::http::Response resp = harness.Call(req);
  if (resp.status < 200 || resp.status > 599) std::abort();
  nlohmann::json answer = nlohmann::json::parse(resp.body, nullptr, false);
  if (!answer.is_object()) std::abort();
  if (resp.status == 409 && resp.body != uploadbroker::ingest::kRejectedBody) std::abort();
  if (resp.status == 200) {
    if (req.method != "POST") std::abort();
    absl::Status verified = harness.verifier().Verify(
        req.query_raw, req.body, absl::StripAsciiWhitespace(authorization),
        absl::StripAsciiWhitespace(key_url), absl::StripAsciiWhitespace(parts[6]));
    if (!verified.ok()) std::abort();  // accepted an unverified callback
    absl::string_view type = parts[1];
    type = absl::StripAsciiWhitespace(type.substr(0, type.find(';')));
    if (!absl::EqualsIgnoreCase(type, "application/json")) std::abort();  // another body type
    auto fields = uploadbroker::callback::ParseCallbackBody(parts[1], parts[2]);
    if (!fields.ok()) std::abort();  // accepted a body that does not parse
    if (fields->bucket != "b" || absl::StartsWith(fields->object, "gone")) {
      std::abort();  // accepted an object the bucket does not hold
    }
    // A repeat is answered 200 only when it is the very same object.
    if (answer.value("upload_id", "") != fields->upload_id ||
        answer.value("bucket", "") != fields->bucket ||
        answer.value("key", "") != fields->object ||
        answer.value("size", int64_t{-1}) != fields->size ||
        answer.value("etag", "") != fields->etag) {
      std::abort();  // answered for another object
    }
  }
  return 0;
}
