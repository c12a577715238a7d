#include "osssim/oss_error.h"

#include "absl/strings/str_cat.h"

namespace uploadbroker::osssim {

http::Response ErrorResponse(const OssError& e, const std::string& request_id) {
  http::Response r;
  r.status = e.status;
  r.content_type = "application/xml";
  r.body = ErrorXml(e, request_id, "oss-sim");
  r.headers.emplace_back("x-oss-request-id", request_id);
  return r;
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string ErrorXml(const OssError& error, absl::string_view request_id,
                     absl::string_view host_id) {
  std::string sts = error.string_to_sign.empty()
                        ? ""
                        : absl::StrCat("  <StringToSign>", XmlEscape(error.string_to_sign),
                                       "</StringToSign>\n");
  return absl::StrCat("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>",
                      XmlEscape(error.code), "</Code>\n  <Message>", XmlEscape(error.message),
                      "</Message>\n", sts, "  <RequestId>", XmlEscape(request_id),
                      "</RequestId>\n  <HostId>", XmlEscape(host_id), "</HostId>\n</Error>\n");
}

}  // namespace uploadbroker::osssim
