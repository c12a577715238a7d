#include "client/upload_common.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "ossapi/xml.h"

namespace uploadbroker::client::internal {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

int Progress(void* stream, curl_off_t, curl_off_t, curl_off_t total, curl_off_t now) {
  if (total <= 0) return 0;
  int pct = static_cast<int>(now * 100 / total);
  int bar = pct / 5;
  *static_cast<std::ostream*>(stream)
      << "\r[" << std::string(bar, '#') << std::string(20 - bar, ' ') << "] " << pct << "% ("
      << now << "/" << total << " bytes)" << std::flush;
  return 0;
}

}  // namespace

// Common options, then perform.
OssAnswer Perform(CURL* c, curl_slist* headers, const UploadArgs& args, std::ostream& err) {
  OssAnswer a;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (args.progress) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &err);
  }
  a.code = curl_easy_perform(c);
  if (args.progress) err << "\n";
  a.curl_error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(a.code);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  return a;
}

std::string XmlField(const std::string& xml, const std::string& tag) {
  absl::StatusOr<ossapi::XmlNode> root = ossapi::ParseXml(xml);
  return root.ok() ? root->ChildText(tag) : "";
}

// Plain-words explanation of an OSS refusal.
std::string Explain(const OssAnswer& a) {
  std::string code = XmlField(a.body, "Code");
  std::string message = XmlField(a.body, "Message");
  if (a.status == 203 || code == "CallbackFailed") {
    return absl::StrCat(
        "the file was stored in OSS, but OSS could not deliver the upload callback to the broker (",
        message, "); the broker records it once the authorization has expired, when its "
        "reconciler finds the object in OSS");
  }
  if (absl::StrContains(message, "Policy expired")) {
    return "the upload policy expired before the upload reached OSS; ask the broker for a new one";
  }
  if (absl::StrContains(message, "Request has expired")) {
    return "the presigned URL expired before the upload reached OSS; ask the broker for a new one";
  }
  if (code == "FileAlreadyExists") {
    return "an object already exists at this key and the authorization forbids overwriting it; "
           "use another key, or allow overwriting (ubctl --allow-overwrite)";
  }
  if (code == "EntityTooLarge") return "the file is larger than the broker allows for this upload";
  if (code == "EntityTooSmall") return "the file is smaller than the broker allows for this upload";
  if (code == "SignatureDoesNotMatch") {
    return "OSS rejected the signature: the broker signs with credentials OSS does not accept, "
           "or the request was changed after signing (headers, key or content type)";
  }
  if (code == "InvalidAccessKeyId") return "OSS does not know the AccessKey the broker signs with";
  if (code == "AccessDenied") return absl::StrCat("OSS refused the upload: ", message);
  return absl::StrCat("OSS answered HTTP ", a.status, " ", code.empty() ? "" : code + ": ",
                      message.empty() ? a.body : message);
}

int Report(const OssAnswer& a, std::ostream& out, std::ostream& err) {
  if (a.code != CURLE_OK) {
    err << "error: could not reach OSS: " << a.curl_error << "\n";
    return 1;
  }
  if (a.status < 200 || a.status > 299 || a.status == 203) {
    err << "error: " << Explain(a) << "\n";
    return 1;
  }
  nlohmann::json relayed = nlohmann::json::parse(a.body, nullptr, false);
  if (a.body.empty() || relayed.is_discarded()) {
    err << "warning: OSS stored the file but relayed no callback answer (HTTP " << a.status
        << ")\n";
    out << nlohmann::json{{"status", a.status}}.dump(2) << "\n";
    return 0;
  }
  out << relayed.dump(2) << "\n";
  return 0;
}

bool FillMetadata(const std::vector<std::string>& kvs,
                  google::protobuf::Map<std::string, std::string>* md, std::ostream& err) {
  for (const std::string& kv : kvs) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty()) {
      err << "error: --meta entries must be key=value\n";
      return false;
    }
    (*md)[p.first] = p.second;
  }
  return true;
}

}  // namespace uploadbroker::client::internal
