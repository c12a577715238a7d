#include "ledger/sqlite_util.h"

#include <algorithm>
#include <limits>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace uploadbroker::ledger {
namespace {

absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

// SQLite's message, the OS error behind it if any, and the code.
std::string Reason(sqlite3* db, int rc) {
  std::string reason = db == nullptr ? sqlite3_errstr(rc) : sqlite3_errmsg(db);
  int os_error = db == nullptr ? 0 : sqlite3_system_errno(db);
  switch (rc & 0xff) {
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      if (os_error != 0) {
        absl::StrAppend(&reason, " (",
                        std::generic_category().message(os_error), ")");
      }
      break;
    default:
      break;
  }
  absl::StrAppend(&reason, " [sqlite code ", rc, "]");
  return reason;
}

}  // namespace

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const char* file = db == nullptr ? nullptr : sqlite3_db_filename(db, "main");
  return absl::Status(
      CodeFor(rc),
      absl::StrCat("ledger database ",
                   file == nullptr || *file == '\0' ? "(unknown file)" : file,
                   ": ", what, " failed: ", Reason(db, rc)));
}

absl::StatusOr<DbPtr> OpenDb(const std::string& path, bool create,
                             absl::Duration busy_timeout) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (create) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return absl::Status(CodeFor(rc), absl::StrCat("ledger database ", path,
                                                  ": cannot open: ",
                                                  Reason(raw, rc)));
  }
  sqlite3_extended_result_codes(db.get(), 1);
  int64_t busy_ms = std::min<int64_t>(absl::ToInt64Milliseconds(busy_timeout),
                                      std::numeric_limits<int>::max());
  sqlite3_busy_timeout(db.get(), static_cast<int>(busy_ms));
  return db;
}

absl::Status Exec(sqlite3* db, const char* sql, const char* what) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, what == nullptr ? sql : what);
  return absl::OkStatus();
}

absl::StatusOr<StmtPtr> Prepare(sqlite3* db, absl::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) {
    return SqliteError(db, rc, absl::StrCat("prepare \"", sql, "\""));
  }
  return stmt;
}

}  // namespace uploadbroker::ledger
