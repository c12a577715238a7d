// PgConn: one libpq connection, as PostgresLedger's writer, readers and
// notification thread use it. Internal to ledger/.
//
// Not thread-safe: one thread uses a connection at a time. Errors are
// Unavailable when the server cannot be reached or the connection broke
// (broken() is then true and the connection must be replaced), Internal or
// AlreadyExists etc. for statement errors; messages carry libpq's text,
// never the connection string or a password.
//
// Results are requested in binary format; Int64 and Bytes read them.
// libpq's notices and warnings go to the logger (spdlog, escaped with
// common::LogSafe), never to stderr.
#ifndef UPLOADBROKER_LEDGER_PG_CONN_H_
#define UPLOADBROKER_LEDGER_PG_CONN_H_

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::ledger {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// One statement parameter: text, or binary bytes (bytea).
struct PgParam {
  std::string value;
  bool binary = false;
  bool null = false;
  static PgParam Text(std::string v) { return {std::move(v), false, false}; }
  static PgParam Int(int64_t v) { return {std::to_string(v), false, false}; }
  static PgParam Bytes(std::string v) { return {std::move(v), true, false}; }
  static PgParam Null() { return {std::string(), false, true}; }
};

class PgConn {
 public:
  // Connects with `dsn` (a libpq connection string or URI) and sets the
  // session up: connect timeout, TCP keepalives, statement timeout.
  // InvalidArgument when libpq cannot parse `dsn` (the message names the
  // kind of mistake, never the string: libpq's own message quotes it);
  // Unavailable when the server cannot be reached or refuses, with libpq's
  // reason, from which the DSN and the password are redacted.
  static absl::StatusOr<std::unique_ptr<PgConn>> Connect(const std::string& dsn);
  ~PgConn();
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  // Runs `sql` (one or more statements, no parameters); the last result.
  absl::StatusOr<PgResult> Exec(const std::string& sql, absl::string_view what);
  // Runs one statement with parameters ($1, $2, ...). The first 64
  // distinct statements are prepared on the connection the first time they
  // run (so PostgreSQL parses and plans each once per connection), later
  // ones are sent unprepared.
  absl::StatusOr<PgResult> Query(const char* sql,
                                 const std::vector<PgParam>& params,
                                 absl::string_view what, bool prepare = true);

  // True once the connection is lost; every later call fails.
  bool broken() const { return PQstatus(conn_) == CONNECTION_BAD; }
  // True inside a transaction that an error has aborted.
  bool in_failed_transaction() const {
    return PQtransactionStatus(conn_) == PQTRANS_INERROR;
  }
  PGconn* raw() { return conn_; }

 private:
  explicit PgConn(PGconn* conn) : conn_(conn) {}
  absl::StatusOr<PgResult> Check(PGresult* result, absl::string_view what);

  PGconn* conn_;
  std::map<std::string, std::string, std::less<>> prepared_;  // SQL -> statement name
};

// A text[] parameter value: `items` as a PostgreSQL array literal.
std::string PgTextArray(const std::vector<std::string>& items);

// Reads a binary int8/int4/int2 column, or a text column holding digits.
int64_t PgInt64(const PGresult* r, int row, int col);
// A column's raw bytes (bytea in binary format, or text).
absl::string_view PgBytes(const PGresult* r, int row, int col);

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_PG_CONN_H_
