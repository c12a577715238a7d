// OssError: an OSS-style error answer (<Error><Code>…</Code>…</Error>) as the
// simulator sends it. Plain value type.
#ifndef UPLOADBROKER_OSSSIM_OSS_ERROR_H_
#define UPLOADBROKER_OSSSIM_OSS_ERROR_H_

#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "http/message.h"

namespace uploadbroker::osssim {

struct OssError {
  OssError(int s, std::string c, std::string m, std::string sts = "")
      : status(s), code(std::move(c)), message(std::move(m)), string_to_sign(std::move(sts)) {}
  int status = 400;
  std::string code;     // e.g. "SignatureDoesNotMatch"
  std::string message;  // e.g. "Invalid according to Policy: Policy expired."
  // SignatureDoesNotMatch only: what the simulator signed, as OSS reports it.
  std::string string_to_sign;
};

inline OssError InvalidArgument(std::string message) {
  return {400, "InvalidArgument", std::move(message)};
}
inline OssError AccessDenied(std::string message) {
  return {403, "AccessDenied", std::move(message)};
}
inline OssError InvalidPolicy(std::string message) {
  return {400, "InvalidPolicyDocument", std::move(message)};
}

// <?xml …?><Error><Code/><Message/><RequestId/><HostId/></Error>, escaped.
std::string ErrorXml(const OssError& error, absl::string_view request_id,
                     absl::string_view host_id);

// The whole HTTP answer: status, XML body, x-oss-request-id.
http::Response ErrorResponse(const OssError& error, const std::string& request_id);

// XML text escaping (& < > " ').
std::string XmlEscape(absl::string_view text);

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_OSS_ERROR_H_
