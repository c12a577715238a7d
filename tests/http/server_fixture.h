// Shared by the HTTP server tests: request text, a recording handler and a
// server start that fails the test on error.
#ifndef UPLOADBROKER_TESTS_HTTP_SERVER_FIXTURE_H_
#define UPLOADBROKER_TESTS_HTTP_SERVER_FIXTURE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "http/server.h"

namespace uploadbroker::http {

// A GET request for `target`, with `extra` header lines.
inline std::string Get(absl::string_view target, absl::string_view extra = "") {
  return absl::StrCat("GET ", target, " HTTP/1.1\r\nHost: t\r\n", extra, "\r\n");
}

// Answers 200 with the target as body; records what it saw.
class Recorder {
 public:
  Handler handler() {
    return [this](Request request, Responder respond) {
      Response response;
      response.content_type = "text/plain";
      response.body = request.target;
      {
        absl::MutexLock lock(&mu_);
        requests_.push_back(std::move(request));
      }
      respond(std::move(response));
    };
  }
  std::vector<Request> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::function<void(absl::string_view)> on_reject() {
    return [this](absl::string_view reason) {
      absl::MutexLock lock(&mu_);
      rejects_.emplace_back(reason);
    };
  }
  std::vector<std::string> rejects() {
    absl::MutexLock lock(&mu_);
    return rejects_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> rejects_ ABSL_GUARDED_BY(mu_);
};

// A started server, or nullptr with a test failure.
inline std::unique_ptr<Server> Start(ServerOptions options, Handler handler) {
  auto server = Server::Create(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(server).value() : nullptr;
}

}  // namespace uploadbroker::http

#endif  // UPLOADBROKER_TESTS_HTTP_SERVER_FIXTURE_H_
