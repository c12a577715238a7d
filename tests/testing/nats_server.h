// NatsServer: a throwaway NATS server with JetStream for tests, from
// Debian's `nats-server` package: `nats-server -js` on 127.0.0.1, its store
// in a fresh temporary directory. The first Start() lets the server pick a
// free port; later Start()s (after Stop()) reuse that port and store, so a
// client sees the same server come back with its streams.
//
// Start() waits until the server logs that it is ready (at most 30 s) and
// reports failures as a status with the server's log. Stop() kills it
// (SIGKILL: a crash, no goodbye to clients) unless asked to stop it
// gracefully; Start() brings it back. The destructor kills it and removes
// the directory. One test thread owns a NatsServer.
#ifndef UPLOADBROKER_TESTS_TESTING_NATS_SERVER_H_
#define UPLOADBROKER_TESTS_TESTING_NATS_SERVER_H_

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::testing {

class NatsServer {
 public:
  static constexpr const char* kBinary = "/usr/sbin/nats-server";

  NatsServer() = default;
  // Listens on `port` (e.g. one a test named in a config before starting it).
  explicit NatsServer(int port) : port_(port) {}
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  absl::Status Start() {
    if (access(kBinary, X_OK) != 0) {
      return absl::FailedPreconditionError(
          "nats-server is not installed (scripts/install-deps.sh installs it)");
    }
    if (process_ != nullptr) return absl::FailedPreconditionError("already running");
    ++starts_;
    const std::string log = dir_.File(absl::StrCat("server", starts_, ".log"));
    process_ = std::make_unique<Subprocess>(std::vector<std::string>{
        kBinary, "-js", "-a", "127.0.0.1", "-p", port_ == 0 ? "-1" : std::to_string(port_),
        "-sd", dir_.File("store"), "-l", log});
    if (!process_->ok()) {
      process_.reset();
      return absl::InternalError("cannot start nats-server");
    }
    static const std::regex kListening(R"(Listening for client connections on 127\.0\.0\.1:(\d+))");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      const std::string text = Read(log);
      std::smatch m;
      if (text.find("Server is ready") != std::string::npos &&
          std::regex_search(text, m, kListening)) {
        port_ = std::stoi(m[1]);
        return absl::OkStatus();
      }
      if (process_->Wait(std::chrono::milliseconds(0)).has_value() ||
          std::chrono::steady_clock::now() > deadline) {
        const std::string err = process_->StderrSoFar();
        process_.reset();
        return absl::InternalError(absl::StrCat("nats-server did not become ready: ", text, err));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // `graceful`: SIGTERM and wait (clients are told); otherwise SIGKILL.
  void Stop(bool graceful = false) {
    if (process_ == nullptr) return;
    process_->Signal(graceful ? SIGTERM : SIGKILL);
    process_->Wait(std::chrono::seconds(30));
    process_.reset();
  }

  bool running() const { return process_ != nullptr; }
  int port() const { return port_; }
  std::string url() const { return absl::StrCat("nats://127.0.0.1:", port_); }

 private:
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  TempDir dir_;
  int port_ = 0;
  int starts_ = 0;
  std::unique_ptr<Subprocess> process_;  // destroyed before dir_: killed, then removed
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_NATS_SERVER_H_
