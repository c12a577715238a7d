#include "client/upload.h"

#include <curl/curl.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/broker_client.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::client {
namespace {

struct OssAnswer {
  CURLcode code = CURLE_OK;
  std::string curl_error;
  long status = 0;
  std::string body;
};

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
  size_t b = xml.find("<" + tag + ">");
  size_t e = xml.find("</" + tag + ">");
  if (b == std::string::npos || e == std::string::npos || e < b) return "";
  b += tag.size() + 2;
  return xml.substr(b, e - b);
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
           "use another key, or allow overwriting (ubctl --allow_overwrite)";
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

int UploadPost(BrokerClient& broker, const UploadArgs& args, const std::string& data,
               const std::string& filename, std::ostream& out, std::ostream& err) {
  v1::CreatePostPolicyRequest req;
  req.set_bucket(args.bucket);
  req.set_key(args.key);
  req.set_key_prefix(args.key_prefix);
  req.add_content_types(args.content_type);
  req.set_max_size(args.max_size);
  req.set_ttl_seconds(args.ttl_seconds);
  req.set_signature_version(args.v1 ? v1::SIGNATURE_VERSION_V1 : v1::SIGNATURE_VERSION_V4);
  req.set_allow_overwrite(args.allow_overwrite);
  if (!FillMetadata(args.metadata, req.mutable_metadata(), err)) return 2;
  auto policy = broker.CreatePostPolicy(req);
  if (!policy.ok()) {
    err << "error: the broker refused to issue a policy: " << policy.status().message() << "\n";
    return 1;
  }
  std::string key = policy->key_is_prefix() ? policy->key() + filename : policy->key();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  std::unique_ptr<curl_mime, decltype(&curl_mime_free)> mime(curl_mime_init(curl.get()),
                                                             &curl_mime_free);
  bool has_type = false;
  for (const v1::FormField& f : policy->fields()) {  // in the broker's order
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, f.name().c_str());
    const std::string& value = f.name() == "key" ? key : f.value();
    curl_mime_data(part, value.data(), value.size());
    has_type = has_type || absl::EqualsIgnoreCase(f.name(), "Content-Type");
  }
  if (!has_type) {
    curl_mimepart* part = curl_mime_addpart(mime.get());
    curl_mime_name(part, "Content-Type");
    curl_mime_data(part, args.content_type.data(), args.content_type.size());
  }
  curl_mimepart* file = curl_mime_addpart(mime.get());  // file last
  curl_mime_name(file, "file");
  curl_mime_filename(file, filename.c_str());
  curl_mime_type(file, args.content_type.c_str());
  curl_mime_data(file, data.data(), data.size());
  curl_easy_setopt(curl.get(), CURLOPT_URL, policy->url().c_str());
  curl_easy_setopt(curl.get(), CURLOPT_MIMEPOST, mime.get());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
      curl_slist_append(nullptr, "Expect:"), &curl_slist_free_all);
  return Report(Perform(curl.get(), headers.get(), args, err), out, err);
}

int UploadPut(BrokerClient& broker, const UploadArgs& args, const std::string& data,
              const std::string& filename, std::ostream& out, std::ostream& err) {
  v1::CreatePresignedPutRequest req;
  req.set_bucket(args.bucket);
  req.set_key(args.key.empty() ? args.key_prefix + filename : args.key);
  req.set_content_type(args.content_type);
  // The file's exact size, signed: the broker requires it below OSS's 5 GiB cap.
  req.set_content_length(static_cast<int64_t>(data.size()));
  req.set_ttl_seconds(args.ttl_seconds);
  req.set_signature_version(args.v1 ? v1::SIGNATURE_VERSION_V1 : v1::SIGNATURE_VERSION_V4);
  req.set_allow_overwrite(args.allow_overwrite);
  if (!FillMetadata(args.metadata, req.mutable_metadata(), err)) return 2;
  auto put = broker.CreatePresignedPut(req);
  if (!put.ok()) {
    err << "error: the broker refused to presign: " << put.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  bool has_type = false;
  for (const v1::HttpHeader& h : put->headers()) {  // exactly what was signed
    list = curl_slist_append(list, absl::StrCat(h.name(), ": ", h.value()).c_str());
    has_type = has_type || absl::EqualsIgnoreCase(h.name(), "Content-Type");
  }
  if (!has_type) list = curl_slist_append(list, "Content-Type:");  // send none
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, &curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_URL, put->url().c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, put->method().empty() ? "PUT" : put->method().c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, data.data());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(data.size()));
  return Report(Perform(curl.get(), headers.get(), args, err), out, err);
}

}  // namespace

int Upload(const UploadArgs& in, std::ostream& out, std::ostream& err) {
  UploadArgs args = in;
  if (args.file.empty() || args.bucket.empty()) {
    err << "error: usage: ubctl upload FILE --bucket B [--key K | --key-prefix P]\n";
    return 2;
  }
  if (args.key.empty() == args.key_prefix.empty()) {
    err << "error: give exactly one of --key and --key-prefix\n";
    return 2;
  }
  if (args.content_type.empty()) args.content_type = "application/octet-stream";
  std::ifstream file(args.file, std::ios::binary);
  if (!file) {
    err << "error: cannot read " << args.file << "\n";
    return 2;
  }
  std::stringstream s;
  s << file.rdbuf();
  std::string data = s.str();
  std::string filename = args.file.substr(args.file.find_last_of('/') + 1);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  BrokerClient broker(args.target, args.api_key);
  return args.presigned ? UploadPut(broker, args, data, filename, out, err)
                        : UploadPost(broker, args, data, filename, out, err);
}

}  // namespace uploadbroker::client
