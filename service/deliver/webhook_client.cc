#include "deliver/webhook_client.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/log_safe.h"
#include "deliver/ssrf.h"

namespace uploadbroker::deliver {

struct WebhookClient::Transfer {
  WebhookRequest request;
  std::function<void(WebhookResponse)> done;
  curl_slist* headers = nullptr;
  CURL* easy = nullptr;
  absl::Time started;
  std::string refused;  // why the SSRF check refused a connection
  absl::Duration retry_after = absl::ZeroDuration();
  char errbuf[CURL_ERROR_SIZE] = {};
  ~Transfer() { curl_slist_free_all(headers); }
};

namespace {

constexpr int kMaxIdleEasy = 256;
constexpr absl::Duration kMaxRetryAfter = absl::Hours(24);

// Connection checks: the address curl resolved and is about to connect to.
curl_socket_t OpenSocket(void* clientp, curlsocktype purpose, curl_sockaddr* address) {
  auto* t = static_cast<WebhookClient::Transfer*>(clientp);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  if (!t->request.allow_private_addresses) {
    std::string reason = ForbiddenAddressReason(&address->addr);
    if (!reason.empty()) {
      t->refused = std::move(reason);
      return CURL_SOCKET_BAD;
    }
  }
  return socket(address->family, address->socktype, address->protocol);
}

absl::Duration ParseRetryAfter(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  int64_t seconds = 0;
  if (absl::SimpleAtoi(value, &seconds)) {
    return seconds <= 0 ? absl::ZeroDuration() : std::min(absl::Seconds(seconds), kMaxRetryAfter);
  }
  time_t at = curl_getdate(std::string(value).c_str(), nullptr);
  if (at <= 0) return absl::ZeroDuration();
  absl::Duration d = absl::FromTimeT(at) - absl::Now();
  return std::clamp(d, absl::ZeroDuration(), kMaxRetryAfter);
}

size_t OnHeader(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<WebhookClient::Transfer*>(userp);
  absl::string_view line(data, size * n);
  constexpr absl::string_view kName = "retry-after:";
  if (line.size() > kName.size() &&
      absl::EqualsIgnoreCase(line.substr(0, kName.size()), kName)) {
    t->retry_after = ParseRetryAfter(line.substr(kName.size()));
  }
  return size * n;
}

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

std::string TransportError(const WebhookClient::Transfer& t, CURLcode code) {
  if (!t.refused.empty()) {
    return absl::StrCat("refused to connect: ", t.refused, " (allow_private_addresses is off)");
  }
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::StrCat("timed out after ", absl::FormatDuration(t.request.timeout));
    case CURLE_COULDNT_CONNECT: return "connection refused";
    case CURLE_COULDNT_RESOLVE_HOST: return "could not resolve host";
    case CURLE_UNSUPPORTED_PROTOCOL: return "unsupported protocol (https only)";
    case CURLE_ABORTED_BY_CALLBACK: return "broker shutting down";
    default: break;
  }
  std::string detail = t.errbuf[0] != '\0' ? t.errbuf : curl_easy_strerror(code);
  return common::LogSafe(detail, 200);
}

}  // namespace

WebhookClient::WebhookClient() {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, 1024L);
  thread_ = std::thread([this] { Run(); });
}

WebhookClient::~WebhookClient() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  curl_multi_wakeup(multi_);
  thread_.join();
  for (void* e : idle_easy_) curl_easy_cleanup(static_cast<CURL*>(e));
  curl_multi_cleanup(multi_);
}

int WebhookClient::pending() const {
  absl::MutexLock lock(&mu_);
  return pending_;
}

void WebhookClient::Post(WebhookRequest request, std::function<void(WebhookResponse)> done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    if (stop_) {
      WebhookResponse r;
      r.error = "broker shutting down";
      t->done(std::move(r));
      return;
    }
    ++pending_;
    queue_.push_back(std::move(t));
  }
  curl_multi_wakeup(multi_);
}

void WebhookClient::Start(std::unique_ptr<Transfer> t) {
  CURL* e;
  if (!idle_easy_.empty()) {
    e = static_cast<CURL*>(idle_easy_.back());
    idle_easy_.pop_back();
    curl_easy_reset(e);
  } else {
    e = curl_easy_init();
  }
  t->easy = e;
  for (const std::string& h : t->request.headers) t->headers = curl_slist_append(t->headers, h.c_str());
  // No "Expect: 100-continue" round trip before larger bodies.
  t->headers = curl_slist_append(t->headers, "Expect:");
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(t->request.timeout));
  curl_easy_setopt(e, CURLOPT_URL, t->request.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, t->request.allow_http ? "http,https" : "https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");  // never an environment proxy
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request.body.size()));
  curl_easy_setopt(e, CURLOPT_USERAGENT, "upload-broker-webhooks/1");
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &OpenSocket);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Discard);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  t->started = absl::Now();
  running_.insert(t.get());
  curl_multi_add_handle(multi_, e);
  t.release();  // owned through CURLOPT_PRIVATE until Finish
}

void WebhookClient::Finish(void* easy, int curl_code) {
  CURL* e = static_cast<CURL*>(easy);
  Transfer* raw = nullptr;
  curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&raw));
  std::unique_ptr<Transfer> t(raw);
  running_.erase(raw);
  curl_multi_remove_handle(multi_, e);
  WebhookResponse r;
  r.elapsed = absl::Now() - t->started;
  const CURLcode code = static_cast<CURLcode>(curl_code);
  if (code == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    r.status = static_cast<int>(status);
    r.retry_after = t->retry_after;
  } else {
    r.error = TransportError(*t, code);
  }
  if (static_cast<int>(idle_easy_.size()) < kMaxIdleEasy) {
    idle_easy_.push_back(e);
  } else {
    curl_easy_cleanup(e);
  }
  t->easy = nullptr;
  {
    absl::MutexLock lock(&mu_);
    --pending_;
  }
  t->done(std::move(r));
}

void WebhookClient::Run() {
  for (;;) {
    std::deque<std::unique_ptr<Transfer>> fresh;
    bool stop;
    {
      absl::MutexLock lock(&mu_);
      fresh.swap(queue_);
      stop = stop_;
    }
    if (stop) {
      for (auto& t : fresh) {
        WebhookResponse r;
        r.error = "broker shutting down";
        t->done(std::move(r));
      }
      // Transfers still running: answered the same way.
      while (!running_.empty()) {
        Transfer* t = static_cast<Transfer*>(*running_.begin());
        Finish(t->easy, CURLE_ABORTED_BY_CALLBACK);
      }
      break;
    }
    for (auto& t : fresh) Start(std::move(t));
    int running = 0;
    curl_multi_perform(multi_, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg == CURLMSG_DONE) Finish(m->easy_handle, m->data.result);
    }
    curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
  }
}

}  // namespace uploadbroker::deliver
