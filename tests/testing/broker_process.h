// BrokerProcess: runs the upload-broker binary (UB_BROKER_BIN) with a config
// file, waits for its --ready-file and exposes the ports it bound. The
// destructor sends SIGTERM and reaps it; Kill() sends any signal.
#ifndef UPLOADBROKER_TESTS_TESTING_BROKER_PROCESS_H_
#define UPLOADBROKER_TESTS_TESTING_BROKER_PROCESS_H_

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace uploadbroker::testing {

class BrokerProcess {
 public:
  BrokerProcess(const std::string& config, const std::string& ready) {
    std::remove(ready.c_str());
    std::vector<std::string> args = {UB_BROKER_BIN, "--config", config, "--ready_file", ready};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, UB_BROKER_BIN, nullptr, nullptr, argv.data(), environ) != 0) {
      ADD_FAILURE() << "cannot start " << UB_BROKER_BIN;
      pid_ = -1;
      return;
    }
    // Generous: a broker on a busy machine may take seconds to start.
    for (int i = 0; i < 2400; ++i) {
      std::ifstream in(ready);
      nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object()) {
        grpc_port = j["grpc_port"];
        http_port = j["http_port"];
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "broker exited before becoming ready";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ADD_FAILURE() << "broker did not become ready within 60 s";
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
  pid_t pid_ = -1;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_BROKER_PROCESS_H_
