// upload-broker: flags -> Options -> Server::Create -> wait for SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, config, "upload-broker.yaml", "Path of the YAML config file");
ABSL_FLAG(std::string, ready_file, "",
          "Once serving, write {\"grpc_port\":N,\"http_port\":M} to this file "
          "(for scripts and tests that listen on port 0)");

namespace {

// Writes the bound ports atomically (temp file + rename), so a reader never
// sees a partial file.
bool WriteReadyFile(const std::string& path, int grpc_port, int http_port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "{\"grpc_port\":" << grpc_port << ",\"http_port\":" << http_port << "}\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "upload-broker --config FILE\n"
      "Brokers authorized uploads to Alibaba Cloud OSS over gRPC and records\n"
      "OSS upload callbacks durably. See README.md for the config reference.");
  absl::ParseCommandLine(argc, argv);
  // Lock-order checking costs a graph update on every Mutex acquisition in
  // Debian's absl build; the clang -Wthread-safety build checks locking.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<uploadbroker::config::Config> config =
      uploadbroker::config::LoadConfig(absl::GetFlag(FLAGS_config));
  if (!config.ok()) {
    spdlog::critical("cannot start: {}", config.status().ToString());
    return 2;
  }
  uploadbroker::server::Options options;
  options.config = *std::move(config);
  auto server = uploadbroker::server::Server::Create(std::move(options));
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 2;
  }
  std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (!ready_file.empty() &&
      !WriteReadyFile(ready_file, (*server)->grpc_port(), (*server)->http_port())) {
    spdlog::critical("cannot write --ready_file {}", ready_file);
    return 2;
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received signal {}, draining", sig);
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.join();
  spdlog::info("stopped");
  return 0;
}
