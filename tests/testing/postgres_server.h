// PostgresServer: a throwaway PostgreSQL server for tests, from Debian's
// `postgresql` package (initdb + pg_ctl), listening only on a Unix socket in
// a fresh temporary directory. When the tests run as root it runs as the
// unprivileged `postgres` user (PostgreSQL refuses root). fsync,
// synchronous_commit and max_connections (100) keep their defaults, so
// tests show that brokers fit in a stock server; `options` adds server
// settings (`-c name=value ...`), e.g. a commit_delay that widens COMMIT.
//
// Start() failures are reported as a status with the server's log; Stop()
// and Start() can be called again to restart it (same data). The destructor
// stops it immediately and removes the directory.
#ifndef UPLOADBROKER_TESTS_TESTING_POSTGRES_SERVER_H_
#define UPLOADBROKER_TESTS_TESTING_POSTGRES_SERVER_H_

#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::testing {

class PostgresServer {
 public:
  explicit PostgresServer(std::string options = "") : options_(std::move(options)) {}
  ~PostgresServer() {
    if (started_) (void)Run("pg_ctl", "-D " + data() + " -m immediate -w stop");
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Directory of initdb/pg_ctl, or "" when PostgreSQL is not installed.
  static std::string BinDir() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      if (fs::exists(entry.path() / "bin" / "initdb")) return entry.path() / "bin";
    }
    return "";
  }

  // initdb on first use, then start (waiting until it accepts connections).
  absl::Status Start() {
    if (BinDir().empty()) {
      return absl::FailedPreconditionError(
          "PostgreSQL is not installed (scripts/install-deps.sh installs it)");
    }
    if (!initialized_) {
      if (geteuid() == 0) {
        const passwd* pw = getpwnam("postgres");
        if (pw == nullptr) return absl::FailedPreconditionError("no 'postgres' user");
        if (chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
          return absl::InternalError("cannot chown the test directory");
        }
      }
      if (int rc = Run("initdb", "-D " + data() + " -U ub -A trust --no-sync -E UTF8 >" +
                                     dir_.File("initdb.log") + " 2>&1");
          rc != 0) {
        return absl::InternalError("initdb failed: " + ReadFile(dir_.File("initdb.log")));
      }
      initialized_ = true;
    }
    std::string opts = "-c listen_addresses='' -c unix_socket_directories='" + dir_.path() +
                       "' " + options_;
    if (Run("pg_ctl", "-D " + data() + " -l " + dir_.File("server.log") + " -w -t 60 -o \"" +
                          opts + "\" start >/dev/null") != 0) {
      return absl::InternalError("pg_ctl start failed: " + ReadFile(dir_.File("server.log")));
    }
    started_ = true;
    return absl::OkStatus();
  }

  // `mode`: smart, fast or immediate.
  absl::Status Stop(const std::string& mode = "fast") {
    started_ = false;
    if (Run("pg_ctl", "-D " + data() + " -m " + mode + " -w stop >/dev/null") != 0) {
      return absl::InternalError("pg_ctl stop failed");
    }
    return absl::OkStatus();
  }

  // Connection string for `database` as the superuser `ub`.
  std::string Dsn(const std::string& database = "postgres") const {
    return absl::StrCat("host=", dir_.path(), " user=ub dbname=", database);
  }

  // Creates a fresh, empty database and returns its connection string.
  absl::StatusOr<std::string> NewDatabase() {
    static std::atomic<int> counter{0};
    std::string name = absl::StrCat("t", getpid(), "_", counter++);
    PGconn* conn = PQconnectdb(Dsn().c_str());
    absl::Status status;
    if (PQstatus(conn) != CONNECTION_OK) {
      status = absl::UnavailableError(PQerrorMessage(conn));
    } else {
      PGresult* r = PQexec(conn, ("CREATE DATABASE " + name).c_str());
      if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        status = absl::InternalError(PQresultErrorMessage(r));
      }
      PQclear(r);
    }
    PQfinish(conn);
    if (!status.ok()) return status;
    return Dsn(name);
  }

  const std::string& socket_dir() const { return dir_.path(); }

 private:
  std::string data() const { return dir_.File("data"); }

  int Run(const std::string& tool, const std::string& args) const {
    std::string command = BinDir() + "/" + tool + " " + args;
    if (geteuid() == 0) {
      // Single quotes around the whole command for `sh -c`.
      std::string quoted;
      for (char c : command) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      command = "runuser -u postgres -- sh -c '" + quoted + "'";
    }
    return std::system(command.c_str());
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  const std::string options_;
  TempDir dir_;
  bool initialized_ = false;
  bool started_ = false;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_TESTING_POSTGRES_SERVER_H_
