// The upload callback as OSS performs it (oss-protocol.md §4-5): parse the
// callback parameter, render the body, POST it signed to each callbackUrl in
// turn, and judge the answer. Parsing and rendering are pure; SendCallback
// blocks (up to the timeout per URL) and may run on any thread.
#ifndef UPLOADBROKER_OSSSIM_CALLBACK_H_
#define UPLOADBROKER_OSSSIM_CALLBACK_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "osssim/sim_key.h"

namespace uploadbroker::osssim {

struct CallbackParam {
  std::vector<std::string> urls;  // 1..5, in order
  std::string host;               // callbackHost; empty: from the URL
  std::string body_template;
  bool json = false;  // callbackBodyType application/json (else form)
};

// Decodes base64 JSON. InvalidArgument with OSS's wording for bad base64 or
// JSON, over 5 KB, no/too many URLs, empty body, unknown body type, or a
// malformed ${...} placeholder.
absl::StatusOr<CallbackParam> ParseCallbackParam(absl::string_view b64);

// callback-var: base64 of a flat {"x:name":"value"} map.
absl::StatusOr<std::map<std::string, std::string>> ParseCallbackVar(absl::string_view b64);

// Substitutes ${name} (system variables; `size` is written as a JSON number
// in JSON bodies, everything else as a JSON string) and ${x:name} (custom).
// Form bodies get URL-encoded values. Unknown names become empty.
absl::StatusOr<std::string> RenderCallbackBody(const CallbackParam& param,
                                               const std::map<std::string, std::string>& system,
                                               const std::map<std::string, std::string>& custom);

struct CallbackRequestInfo {
  std::string pub_key_url;  // where the simulator serves its public key
  std::string request_id;
  std::string bucket;
  absl::Duration timeout = absl::Seconds(5);
  // https:// callback URLs: trust the PEM CAs in this file instead of the
  // system's (a test CA; development only). Empty: the system's roots.
  std::string ca_file;
};

struct CallbackOutcome {
  bool ok = false;
  std::string body;     // the app server's answer, when ok
  std::string message;  // OSS's CallbackFailed message, when not
};

// Tries each URL in order and stops at the first valid answer: status 200,
// a Content-Length, at most 1 MB, a JSON body.
CallbackOutcome SendCallback(const CallbackParam& param, const std::string& body,
                             const SimKey& key, const CallbackRequestInfo& info);

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_CALLBACK_H_
