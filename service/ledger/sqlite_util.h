// Thin RAII and Status wrappers over the SQLite C API, internal to the ledger.
//
// SQLite has no C++ API of its own; these few helpers exist so the rest of
// the ledger reads as ordinary C++ (owned handles, absl::Status errors that
// name the database file). A connection and its statements are used by one
// thread at a time.
#ifndef UPLOADBROKER_LEDGER_SQLITE_UTIL_H_
#define UPLOADBROKER_LEDGER_SQLITE_UTIL_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace uploadbroker::ledger {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Maps an SQLite result code to a Status whose message says what failed,
// why (SQLite's message) and on which file. Corruption is DataLoss; I/O,
// locking, full-disk and permission problems are Unavailable; the rest are
// Internal.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what);

// Opens (creating if asked) the database file with extended result codes
// and `busy_timeout` for lock waits. The connection is in multi-thread mode:
// use it from one thread at a time.
absl::StatusOr<DbPtr> OpenDb(const std::string& path, bool create,
                             absl::Duration busy_timeout);

// Runs SQL with no result rows (or ignores them). Errors say `what` failed
// (the SQL itself when `what` is null).
absl::Status Exec(sqlite3* db, const char* sql, const char* what = nullptr);

absl::StatusOr<StmtPtr> Prepare(sqlite3* db, absl::string_view sql);

// Resets a reused statement when it leaves scope, releasing its read
// snapshot.
class ScopedReset {
 public:
  explicit ScopedReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;
  ~ScopedReset() { sqlite3_reset(stmt_); }

 private:
  sqlite3_stmt* stmt_;
};

// Binds without copying: `value` must outlive the statement's next step.
inline int BindText(sqlite3_stmt* stmt, int index, absl::string_view value) {
  return sqlite3_bind_text(stmt, index, value.data(),
                           static_cast<int>(value.size()), SQLITE_STATIC);
}
inline int BindBlob(sqlite3_stmt* stmt, int index, absl::string_view value) {
  return sqlite3_bind_blob(stmt, index, value.data(),
                           static_cast<int>(value.size()), SQLITE_STATIC);
}
inline absl::string_view ColumnBytes(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  int size = sqlite3_column_bytes(stmt, column);
  return data == nullptr ? absl::string_view()
                         : absl::string_view(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SQLITE_UTIL_H_
