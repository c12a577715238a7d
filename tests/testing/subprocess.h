// Subprocess: runs one of the project's binaries the way a user does, with
// stdout and stderr captured in files, for tests of command-line behaviour.
//
// One test thread owns a Subprocess. The destructor kills a process still
// running (SIGKILL) and reaps it. Run() is the short form for commands that
// exit by themselves (--help, --version, a usage error).
#ifndef UPLOADBROKER_TESTS_TESTING_SUBPROCESS_H_
#define UPLOADBROKER_TESTS_TESTING_SUBPROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/temp_dir.h"

extern char** environ;

namespace uploadbroker::testing {

struct Exited {
  int code = -1;  // exit status; 128 + signal number when killed by a signal
  std::string out;
  std::string err;
};

class Subprocess {
 public:
  // Starts args[0] (a path) with args[1..]; stdout and stderr go to files in
  // a directory of its own. ok() is false when it could not be started.
  explicit Subprocess(const std::vector<std::string>& args)
      : out_(dir_.File("stdout")), err_(dir_.File("stderr")) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) !=
        0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Subprocess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool ok() const { return pid_ > 0 || exited_.has_value(); }
  // The process id while it runs (-1 once reaped or if it never started).
  pid_t pid() const { return pid_; }

  // Sends `sig` if the process still runs.
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // Waits up to `deadline` for the process to exit; nullopt if it did not.
  std::optional<Exited> Wait(
      std::chrono::milliseconds deadline = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (pid_ > 0) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        Exited e;
        e.code =
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        e.out = Read(out_);
        e.err = Read(err_);
        exited_ = e;
        break;
      }
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exited_;
  }

  // What the process wrote to stderr so far (for failure messages).
  std::string StderrSoFar() const { return Read(err_); }
  // What it wrote to stdout so far (spdlog's default sink).
  std::string StdoutSoFar() const { return Read(out_); }

  // Starts, waits up to a minute, kills it if still running.
  static Exited Run(const std::vector<std::string>& args) {
    Subprocess p(args);
    std::optional<Exited> e = p.Wait();
    return e.has_value() ? *e : Exited{-1, "", "did not exit within 60 s"};
  }

 private:
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  TempDir dir_;
  std::string out_;
  std::string err_;
  pid_t pid_ = -1;
  std::optional<Exited> exited_;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_SUBPROCESS_H_
