// Receiver: a real HTTP server on loopback for webhook tests, built on the
// project's http::Server. It records every request and answers with what
// the test's `answer` function says; kHang keeps the request unanswered
// (until the receiver is destroyed). Thread-safe.
#ifndef UPLOADBROKER_TESTS_DELIVER_RECEIVER_H_
#define UPLOADBROKER_TESTS_DELIVER_RECEIVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "http/server.h"

namespace uploadbroker::testing {

class Receiver {
 public:
  static constexpr int kHang = -1;
  struct Answer {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
  };
  using AnswerFn = std::function<Answer(const http::Request&, int index)>;

  explicit Receiver(AnswerFn answer = nullptr) : answer_(std::move(answer)) {
    http::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.max_body_bytes = 8 << 20;
    o.idle_timeout = absl::Seconds(60);
    o.read_timeout = absl::Seconds(30);
    o.shutdown_grace = absl::Milliseconds(100);
    server_ = *http::Server::Create(o, [this](http::Request req, http::Responder respond) {
      Answer a;
      int index;
      {
        absl::MutexLock lock(&mu_);
        index = static_cast<int>(requests_.size());
        requests_.push_back(req);
      }
      if (answer_) a = answer_(req, index);
      if (a.status == kHang) {
        absl::MutexLock lock(&mu_);
        hung_.push_back(std::move(respond));
        return;
      }
      http::Response r;
      r.status = a.status;
      r.body = "{}";
      r.headers = a.headers;
      respond(std::move(r));
    });
  }
  ~Receiver() { server_->Shutdown(); }

  std::string url(const std::string& path = "/hook") const {
    return absl::StrCat("http://127.0.0.1:", server_->port(), path);
  }
  int port() const { return server_->port(); }
  std::vector<http::Request> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return requests_.size();
  }
  bool WaitForCount(size_t n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requests_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  AnswerFn answer_;
  absl::Mutex mu_;
  std::vector<http::Request> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<http::Responder> hung_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<http::Server> server_;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_DELIVER_RECEIVER_H_
