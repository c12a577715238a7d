#include "ossapi/signed_request.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ossapi/xml.h"
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

absl::StatusOr<OssAnswer> SendSigned(credentials::CredentialProvider& creds,
                                     const common::Clock& clock, absl::Duration timeout,
                                     const config::Bucket& bucket, const SignedRequest& request) {
  UB_ASSIGN_OR_RETURN(policy::Credential cred, creds.Get());
  policy::PresignInput in;
  in.method = request.method;
  in.scheme = bucket.scheme;
  in.host = bucket.api_host;
  in.path_style = bucket.path_style;
  in.bucket = bucket.name;
  in.key = request.key;
  in.query = request.query;
  in.headers = request.headers;
  in.now = clock.Now();
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
  OssAnswer answer;
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(timeout));
  curl_easy_setopt(curl.get(), CURLOPT_URL, signed_req.url.c_str());
  // The signed path as it is (no dot-segment collapsing: "a/../b" is a key).
  curl_easy_setopt(curl.get(), CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.method == "POST") {
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
    return absl::UnavailableError(absl::StrCat(request.what, ": ", curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &answer.status);
  if (answer.status >= 200 && answer.status < 300) return answer;
  // OSS's error document is <Error><Code/><Message/><RequestId/>...</Error>;
  // a body that is not one (empty, HTML from a proxy...) still names the
  // HTTP status, and says why the body told nothing more.
  std::string code;
  std::string text;
  absl::StatusOr<XmlNode> error = ParseXml(answer.body);
  if (error.ok() && error->name == "Error") {
    code = error->ChildText("Code");
    text = absl::StrCat(request.what, ": OSS answered HTTP ", answer.status, " ", code, " (",
                        error->ChildText("Message"), "; request id ",
                        error->ChildText("RequestId"), ")");
  } else {
    text = absl::StrCat(request.what, ": OSS answered HTTP ", answer.status,
                        " without an OSS error document (",
                        answer.body.empty()  ? std::string("empty body")
                        : error.ok()         ? absl::StrCat("<", error->name, "> body")
                                             : std::string(error.status().message()),
                        ")");
  }
  if (code == "NoSuchUpload") return absl::NotFoundError(text);
  if (code == "FileAlreadyExists") return absl::AlreadyExistsError(text);
  if (answer.status >= 400 && answer.status < 500) return absl::FailedPreconditionError(text);
  return absl::UnavailableError(text);
}

}  // namespace uploadbroker::ossapi
