#include "osssim/callback.h"

#include <curl/curl.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/encoding.h"
#include "common/url.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::osssim {
namespace {

using Json = nlohmann::json;
constexpr size_t kMaxParamBytes = 5 * 1024;
constexpr size_t kMaxAnswerBytes = 1024 * 1024;

absl::StatusOr<Json> DecodeJson(absl::string_view b64, absl::string_view what) {
  if (b64.size() > kMaxParamBytes) {
    return absl::InvalidArgumentError(absl::StrCat("The ", what, " parameter is too long."));
  }
  absl::StatusOr<std::string> text = common::Base64Decode(b64);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("The ", what, " is not base64 encoded."));
  }
  Json doc = Json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("The ", what, " is not json format."));
  }
  return doc;
}

// Calls `emit(literal)` and `var(name)` along the template.
template <typename Lit, typename Var>
absl::Status Walk(absl::string_view tmpl, Lit emit, Var var) {
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t dollar = tmpl.find("${", i);
    if (dollar == absl::string_view::npos) {
      emit(tmpl.substr(i));
      break;
    }
    emit(tmpl.substr(i, dollar - i));
    size_t close = tmpl.find('}', dollar + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("Right brace is missing in callback body.");
    }
    absl::Status st = var(tmpl.substr(dollar + 2, close - dollar - 2));
    if (!st.ok()) return st;
    i = close + 1;
  }
  return absl::OkStatus();
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() + size * n > kMaxAnswerBytes + 1) return 0;  // abort: too long
  s->append(data, size * n);
  return size * n;
}

struct Answer {
  CURLcode code = CURLE_OK;
  long status = 0;
  curl_off_t content_length = -1;
  std::string body;
  std::string host_port;
};

Answer Post(const std::string& url, const std::vector<std::string>& headers,
            const std::string& body, absl::Duration timeout, const std::string& ca_file) {
  Answer a;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> owned(list, &curl_slist_free_all);
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  if (!ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
  a.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
  curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &a.content_length);
  return a;
}

// (decoded path) + ("?" + raw query) of `url`, as OSS signs it.
absl::StatusOr<std::string> SignedPathAndQuery(const std::string& url, std::string* host_port) {
  absl::StatusOr<common::Url> u = common::ParseUrl(url, common::DotSegments::kResolve);
  if (!u.ok()) return absl::InvalidArgumentError("bad callbackUrl");
  *host_port = absl::StrCat(u->host, ":", u->port);
  absl::StatusOr<std::string> decoded = common::PercentDecode(u->path, false);
  if (!decoded.ok()) return decoded.status();
  return u->query.empty() ? *decoded : absl::StrCat(*decoded, "?", u->query);
}

}  // namespace

absl::StatusOr<CallbackParam> ParseCallbackParam(absl::string_view b64) {
  absl::StatusOr<Json> doc = DecodeJson(b64, "callback");
  if (!doc.ok()) return doc.status();
  CallbackParam p;
  auto str = [&](const char* name) -> std::string {
    auto it = doc->find(name);
    return it != doc->end() && it->is_string() ? it->get<std::string>() : "";
  };
  std::string urls = str("callbackUrl");
  if (urls.empty()) return absl::InvalidArgumentError("The callbackUrl is empty.");
  for (absl::string_view u : absl::StrSplit(urls, ';', absl::SkipWhitespace())) {
    p.urls.emplace_back(absl::StripAsciiWhitespace(u));
  }
  if (p.urls.empty()) return absl::InvalidArgumentError("The callbackUrl is empty.");
  if (p.urls.size() > 5) return absl::InvalidArgumentError("The callbackUrl has more than 5 urls.");
  for (const std::string& u : p.urls) {
    std::string hp;
    if (!SignedPathAndQuery(u, &hp).ok() ||
        !(absl::StartsWith(u, "http://") || absl::StartsWith(u, "https://"))) {
      return absl::InvalidArgumentError(absl::StrCat("The callbackUrl is invalid: ", u));
    }
  }
  p.host = str("callbackHost");
  p.body_template = str("callbackBody");
  if (p.body_template.empty()) return absl::InvalidArgumentError("The callbackBody is empty.");
  std::string type = str("callbackBodyType");
  if (type.empty() || type == "application/x-www-form-urlencoded") {
    p.json = false;
  } else if (type == "application/json") {
    p.json = true;
  } else {
    return absl::InvalidArgumentError("The callbackBodyType is not supported.");
  }
  absl::Status syntax =
      Walk(p.body_template, [](absl::string_view) {}, [](absl::string_view) { return absl::OkStatus(); });
  if (!syntax.ok()) return syntax;
  return p;
}

absl::StatusOr<std::map<std::string, std::string>> ParseCallbackVar(absl::string_view b64) {
  absl::StatusOr<Json> doc = DecodeJson(b64, "callback-var");
  if (!doc.ok()) return doc.status();
  std::map<std::string, std::string> vars;
  for (const auto& [k, v] : doc->items()) {
    if (!v.is_string()) return absl::InvalidArgumentError("The callback-var values must be strings.");
    if (!absl::StartsWith(k, "x:") || absl::AsciiStrToLower(k) != k) {
      return absl::InvalidArgumentError("The callback-var keys must be lowercase and start with x:.");
    }
    vars[k] = v.get<std::string>();
  }
  return vars;
}

absl::StatusOr<std::string> RenderCallbackBody(const CallbackParam& param,
                                               const std::map<std::string, std::string>& system,
                                               const std::map<std::string, std::string>& custom) {
  std::string out;
  absl::Status st = Walk(
      param.body_template, [&](absl::string_view lit) { out.append(lit.data(), lit.size()); },
      [&](absl::string_view name) {
        const auto& source = absl::StartsWith(name, "x:") ? custom : system;
        auto it = source.find(std::string(name));
        std::string value = it == source.end() ? "" : it->second;
        int64_t n = 0;
        if (!param.json) {
          out += common::UriEncode(value, false);
        } else if (name == "size" && absl::SimpleAtoi(value, &n)) {
          out += value;
        } else {
          out += Json(value).dump(-1, ' ', false, Json::error_handler_t::replace);
        }
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return out;
}

CallbackOutcome SendCallback(const CallbackParam& param, const std::string& body,
                             const SimKey& key, const CallbackRequestInfo& info) {
  CallbackOutcome outcome;
  outcome.message = "Error status : -1. OSS can not connect to your callbackUrl, please check it.";
  for (const std::string& url : param.urls) {
    std::string host_port;
    absl::StatusOr<std::string> signed_part = SignedPathAndQuery(url, &host_port);
    if (!signed_part.ok()) continue;
    std::string auth =
        common::Base64Encode(key.SignMd5(absl::StrCat(*signed_part, "\n", body)));
    std::vector<std::string> headers = {
        absl::StrCat("Authorization: ", auth),
        absl::StrCat("Content-Type: ",
                     param.json ? "application/json" : "application/x-www-form-urlencoded"),
        absl::StrCat("Date: ", absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::Now(),
                                                absl::UTCTimeZone())),
        "User-Agent: aliyun-oss-callback",
        "Connection: close",
        "Expect:",
        absl::StrCat("x-oss-pub-key-url: ", common::Base64Encode(info.pub_key_url)),
        absl::StrCat("x-oss-request-id: ", info.request_id),
        absl::StrCat("x-oss-bucket: ", info.bucket),
        "x-oss-signature-version: 1.0",
        "x-oss-tag: CALLBACK",
    };
    if (!param.host.empty()) headers.push_back(absl::StrCat("Host: ", param.host));
    Answer a = Post(url, headers, body, info.timeout, info.ca_file);
    if (a.code == CURLE_OPERATION_TIMEDOUT) {
      int64_t ms = absl::ToInt64Milliseconds(info.timeout);
      outcome.message = absl::StrCat("error status:-1 ", host_port, " reply timeout, cost: ", ms,
                                     " MS, timeout: ", ms, " MS");
      continue;
    }
    if (a.code == CURLE_WRITE_ERROR) {
      outcome.message = "Error Status : 400.User server return too long content-length value";
      continue;
    }
    if (a.code != CURLE_OK) {
      outcome.message =
          "Error status : -1. OSS can not connect to your callbackUrl, please check it.";
      continue;
    }
    if (a.status != 200) {
      outcome.message = absl::StrCat("Error status : ", a.status, ".");
      continue;
    }
    if (a.content_length < 0) {
      outcome.message = "Error Status : 400.User server missing content-length";
      continue;
    }
    if (a.content_length == 0 || static_cast<size_t>(a.content_length) > kMaxAnswerBytes) {
      outcome.message = "Error Status : 400.User server return too long content-length value";
      continue;
    }
    if (Json::parse(a.body, nullptr, false).is_discarded()) {
      outcome.message = "Response body is not valid json format.";
      continue;
    }
    outcome.ok = true;
    outcome.body = std::move(a.body);
    outcome.message.clear();
    return outcome;
  }
  return outcome;
}

}  // namespace uploadbroker::osssim
