// BrokerProcess: runs the upload-broker binary (UB_BROKER_BIN) with a config
// file, waits for its --ready-file (woken by inotify, not by polling) and
// exposes the ports it bound (port 0 in the config: the ones it got). The
// destructor sends SIGTERM and reaps it; Kill() sends any signal.
#ifndef UPLOADBROKER_TESTS_TESTING_BROKER_PROCESS_H_
#define UPLOADBROKER_TESTS_TESTING_BROKER_PROCESS_H_

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace uploadbroker::testing {

class BrokerProcess {
 public:
  BrokerProcess(const std::string& config, const std::string& ready) {
    std::remove(ready.c_str());
    // Watch the directory before the broker starts, so the rename that
    // publishes the ready file cannot be missed.
    std::string dir = std::filesystem::path(ready).parent_path();
    if (dir.empty()) dir = ".";
    int watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (watch >= 0 && inotify_add_watch(watch, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      close(watch);
      watch = -1;  // e.g. out of inotify instances: WaitReady falls back to polling
    }
    std::vector<std::string> args = {UB_BROKER_BIN, "--config", config, "--ready_file", ready};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, UB_BROKER_BIN, nullptr, nullptr, argv.data(), environ) != 0) {
      ADD_FAILURE() << "cannot start " << UB_BROKER_BIN;
      pid_ = -1;
      if (watch >= 0) close(watch);
      return;
    }
    WaitReady(ready, watch);
    if (watch >= 0) close(watch);
  }
  void Kill(int sig) {
    if (pid_ > 0) {
      kill(pid_, sig);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  ~BrokerProcess() { Kill(SIGTERM); }
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  int grpc_port = 0;
  int http_port = 0;

 private:
  // Waits for the ready file (woken by `watch`) or the broker's exit (a
  // pidfd), whichever comes first, for a generous two minutes: a broker on
  // a busy machine may take seconds to start.
  void WaitReady(const std::string& ready, int watch) {
    const int exited = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    for (;;) {
      std::ifstream in(ready);
      nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object()) {
        grpc_port = j["grpc_port"];
        http_port = j["http_port"];
        break;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ADD_FAILURE() << "broker did not become ready within 2 minutes";
        break;
      }
      // Without a watch (or a pidfd), look again every 100 ms.
      const bool woken = watch >= 0 && exited >= 0;
      const int wait_ms = static_cast<int>(woken ? left.count() : std::min<int64_t>(left.count(), 100));
      pollfd fds[2] = {{watch, POLLIN, 0}, {exited, POLLIN, 0}};
      poll(fds, 2, wait_ms);
      const bool gone = exited >= 0 ? fds[1].revents != 0 : waitpid(pid_, nullptr, WNOHANG) == pid_;
      if (gone) {
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
        ADD_FAILURE() << "broker exited before becoming ready";
        break;
      }
      char events[4096];
      while (watch >= 0 && read(watch, events, sizeof(events)) > 0) {
      }
    }
    if (exited >= 0) close(exited);
  }

  pid_t pid_ = -1;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_BROKER_PROCESS_H_
