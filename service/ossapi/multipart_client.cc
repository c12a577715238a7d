#include "ossapi/multipart_client.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "policy/presign.h"

namespace uploadbroker::ossapi {
namespace {

constexpr size_t kMaxAnswerBytes = 4 << 20;

size_t Append(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() + size * n > kMaxAnswerBytes) return 0;  // aborts the transfer
  s->append(data, size * n);
  return size * n;
}

}  // namespace

std::string XmlElement(absl::string_view xml, absl::string_view tag, size_t* pos) {
  std::string open = absl::StrCat("<", tag, ">");
  std::string close = absl::StrCat("</", tag, ">");
  size_t a = xml.find(open, pos == nullptr ? 0 : *pos);
  if (a == absl::string_view::npos) return "";
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == absl::string_view::npos) return "";
  if (pos != nullptr) *pos = b + close.size();
  return absl::StrReplaceAll(xml.substr(a, b - a), {{"&quot;", "\""},
                                                    {"&#34;", "\""},
                                                    {"&apos;", "'"},
                                                    {"&lt;", "<"},
                                                    {"&gt;", ">"},
                                                    {"&amp;", "&"}});
}

absl::StatusOr<MultipartClient::Answer> MultipartClient::Send(
    const config::Bucket& bucket, const std::string& key, const std::string& method,
    std::vector<std::pair<std::string, std::string>> query,
    std::vector<std::pair<std::string, std::string>> headers, const std::string& what) {
  UB_ASSIGN_OR_RETURN(policy::Credential cred, creds_.Get());
  policy::PresignInput in;
  in.method = method;
  in.scheme = bucket.scheme;
  in.host = bucket.api_host;
  in.path_style = bucket.path_style;
  in.bucket = bucket.name;
  in.key = key;
  in.query = std::move(query);
  in.headers = std::move(headers);
  in.now = clock_.Now();
  in.expires = absl::Minutes(1);
  in.region = bucket.region;
  policy::PresignedRequest signed_req = policy::PresignV4(in, cred);

  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> list(nullptr, curl_slist_free_all);
  curl_slist* raw = nullptr;
  for (const auto& [name, value] : signed_req.headers) {
    raw = curl_slist_append(raw, absl::StrCat(name, ": ", value).c_str());
  }
  // libcurl adds a form Content-Type to POSTs; the signature covers the
  // Content-Type, so send none unless one was signed.
  bool has_type = false;
  for (const auto& h : signed_req.headers) has_type |= absl::EqualsIgnoreCase(h.first, "Content-Type");
  if (!has_type) raw = curl_slist_append(raw, "Content-Type:");
  list.reset(raw);
  Answer answer;
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(timeout_));
  curl_easy_setopt(curl.get(), CURLOPT_URL, signed_req.url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &answer.body);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(what, ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &answer.status);
  if (answer.status >= 200 && answer.status < 300) return answer;
  std::string code = XmlElement(answer.body, "Code");
  std::string text = absl::StrCat(what, ": OSS answered HTTP ", answer.status, " ", code, " (",
                                  XmlElement(answer.body, "Message"), "; request id ",
                                  XmlElement(answer.body, "RequestId"), ")");
  if (code == "NoSuchUpload") return absl::NotFoundError(text);
  if (code == "FileAlreadyExists") return absl::AlreadyExistsError(text);
  if (answer.status >= 400 && answer.status < 500) return absl::FailedPreconditionError(text);
  return absl::UnavailableError(text);
}

absl::StatusOr<std::string> MultipartClient::Initiate(const config::Bucket& bucket,
                                                      const std::string& key,
                                                      const std::string& content_type,
                                                      bool forbid_overwrite) {
  std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", content_type}};
  if (forbid_overwrite) headers.emplace_back("x-oss-forbid-overwrite", "true");
  UB_ASSIGN_OR_RETURN(Answer answer,
                      Send(bucket, key, "POST", {{"uploads", ""}}, std::move(headers),
                           absl::StrCat("InitiateMultipartUpload ", bucket.name, "/", key)));
  std::string id = XmlElement(answer.body, "UploadId");
  if (id.empty()) {
    return absl::UnavailableError("InitiateMultipartUpload: OSS's answer has no UploadId");
  }
  return id;
}

absl::StatusOr<std::vector<HeldPart>> MultipartClient::ListParts(const config::Bucket& bucket,
                                                                 const std::string& key,
                                                                 const std::string& upload_id) {
  std::vector<HeldPart> parts;
  std::string marker = "0";
  for (int page = 0; page < 11; ++page) {  // 10,000 parts at 1,000 a page
    UB_ASSIGN_OR_RETURN(Answer answer,
                        Send(bucket, key, "GET",
                             {{"max-parts", "1000"}, {"part-number-marker", marker},
                              {"uploadId", upload_id}},
                             {}, absl::StrCat("ListParts ", bucket.name, "/", key)));
    size_t pos = 0;
    while (true) {
      std::string part = XmlElement(answer.body, "Part", &pos);
      if (part.empty()) break;
      HeldPart held;
      if (!absl::SimpleAtoi(XmlElement(part, "PartNumber"), &held.number) ||
          !absl::SimpleAtoi(XmlElement(part, "Size"), &held.size)) {
        return absl::UnavailableError("ListParts: OSS's answer has a malformed <Part>");
      }
      held.etag = XmlElement(part, "ETag");
      parts.push_back(std::move(held));
    }
    if (XmlElement(answer.body, "IsTruncated") != "true") return parts;
    marker = XmlElement(answer.body, "NextPartNumberMarker");
  }
  return absl::UnavailableError("ListParts: more pages than 10,000 parts can fill");
}

absl::Status MultipartClient::Abort(const config::Bucket& bucket, const std::string& key,
                                    const std::string& upload_id) {
  return Send(bucket, key, "DELETE", {{"uploadId", upload_id}}, {},
              absl::StrCat("AbortMultipartUpload ", bucket.name, "/", key))
      .status();
}

}  // namespace uploadbroker::ossapi
