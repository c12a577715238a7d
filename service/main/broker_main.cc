// upload-broker: flags -> Options -> Server::Create -> wait for SIGTERM/SIGINT;
// SIGHUP re-reads the config file and applies its callers section.
#include <thread>

#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "common/log_safe.h"
#include "runtime/cli.h"
#include "runtime/log_format.h"
#include "runtime/ready_file.h"
#include "runtime/signals.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, config, "upload-broker.yaml", "Path of the YAML config file");
ABSL_FLAG(std::string, ready_file, "",
          "Once serving, write {\"grpc_port\":N,\"http_port\":M} to this file "
          "(for scripts and tests that listen on port 0)");
ABSL_FLAG(uploadbroker::runtime::LogFormat, log_format, uploadbroker::runtime::LogFormat::kText,
          uploadbroker::runtime::kLogFormatHelp);

namespace runtime = uploadbroker::runtime;

int main(int argc, char** argv) {
  runtime::ParseCommandLine(
      argc, argv,
      {"upload-broker",
       "upload-broker --config FILE [--ready-file FILE] [--log-format text|json]\n"
       "Brokers authorized uploads to Alibaba Cloud OSS over gRPC and records\n"
       "OSS upload callbacks durably. See README.md for the config reference.",
       __FILE__});
  runtime::SetLogFormat(absl::GetFlag(FLAGS_log_format));
  // Lock-order checking costs a graph update on every Mutex acquisition in
  // Debian's absl build; the clang -Wthread-safety build checks locking.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  runtime::TerminationSignals signals(/*reload=*/true);  // before any thread starts

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
  const std::string ready_file = absl::GetFlag(FLAGS_ready_file);
  if (!ready_file.empty()) {
    absl::Status written = runtime::WriteReadyFile(
        ready_file, {{"grpc_port", (*server)->grpc_port()},
                     {"http_port", (*server)->http_port()},
                     {"admin_port", (*server)->admin_port()}});
    if (!written.ok()) {
      spdlog::critical("--ready-file: {}", written.ToString());
      return 2;
    }
  }
  std::thread waiter([&] {
    for (;;) {
      const int sig = signals.Wait();
      if (sig != SIGHUP) {
        spdlog::info("received signal {}, draining", sig);
        (*server)->Shutdown();
        return;
      }
      // A config that does not load (or does not fit the running broker)
      // changes nothing: the current API keys stay.
      const std::string path = absl::GetFlag(FLAGS_config);
      absl::StatusOr<uploadbroker::config::Config> fresh = uploadbroker::config::LoadConfig(path);
      absl::Status applied = fresh.ok() ? (*server)->ReloadCallers(*fresh) : fresh.status();
      if (!applied.ok()) {
        spdlog::error("SIGHUP: config not reloaded, the current API keys stay: {}",
                      uploadbroker::common::LogSafeStatus(applied));
      }
    }
  });
  (*server)->Wait();
  waiter.join();
  spdlog::info("stopped");
  return 0;
}
