// WebhookClient: the HTTP client of every webhook target of a broker: one
// libcurl multi handle driven by one thread it owns. Connections are kept
// alive and reused across requests (the multi handle's connection cache);
// easy handles are reused too. Nothing here blocks a caller: Post queues the
// request and wakes the thread.
//
// Every connection is checked before it is opened (ssrf.h): the socket
// address curl is about to connect to, after resolution, is refused unless
// it is public or the request allows private addresses. Redirects are never
// followed, proxies from the environment are ignored, and only https (plus
// http when the request allows it) is spoken.
//
// Threads: Post from any thread; `done` runs on the client's thread, once
// per request, and must be quick (it holds up every other target's
// requests). The destructor answers requests still pending with
// "broker shutting down" and joins the thread.
#ifndef UPLOADBROKER_DELIVER_WEBHOOK_CLIENT_H_
#define UPLOADBROKER_DELIVER_WEBHOOK_CLIENT_H_

#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace uploadbroker::deliver {

struct WebhookRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  absl::Duration timeout = absl::Seconds(10);
  bool allow_http = false;               // development only
  bool allow_private_addresses = false;  // ssrf.h
};

struct WebhookResponse {
  // The answer's status; 0 when none arrived (then `error` says why).
  int status = 0;
  // Transport failure, short and log-safe: "timed out after 10s",
  // "connection refused", "refused to connect: 127.0.0.1 is a loopback
  // address (allow_private_addresses is off)".
  std::string error;
  // The answer's Retry-After (seconds or an HTTP date), zero when absent.
  absl::Duration retry_after = absl::ZeroDuration();
  absl::Duration elapsed = absl::ZeroDuration();
};

class WebhookClient {
 public:
  WebhookClient();
  ~WebhookClient();
  WebhookClient(const WebhookClient&) = delete;
  WebhookClient& operator=(const WebhookClient&) = delete;

  void Post(WebhookRequest request, std::function<void(WebhookResponse)> done);

  // Requests queued or running (for tests and metrics).
  int pending() const;

  struct Transfer;  // internal (webhook_client.cc)

 private:
  void Run();
  void Start(std::unique_ptr<Transfer> t);
  void Finish(void* easy, int curl_code);

  void* multi_ = nullptr;  // CURLM*
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Transfer>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  // Client thread only.
  std::vector<void*> idle_easy_;
  std::set<void*> running_;  // Transfer*
  std::thread thread_;
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_WEBHOOK_CLIENT_H_
