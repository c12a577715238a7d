#include "ledger/pg_conn.h"

#include <endian.h>

#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log_safe.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::ledger {
namespace {

// SQLSTATE classes that mean "try again later" rather than a bad statement:
// connection exceptions, insufficient resources, operator intervention
// (shutdown, failover), and a read-only standby after failover.
bool Transient(absl::string_view sqlstate) {
  return absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "53") ||
         absl::StartsWith(sqlstate, "57") || sqlstate == "25006" ||
         sqlstate == "40001" || sqlstate == "40P01";
}

constexpr size_t kMaxPrepared = 64;

std::string ErrorText(const char* message) {
  return std::string(absl::StripTrailingAsciiWhitespace(message ? message : ""));
}

// Whether libpq reads `dsn` as a connection string or URI rather than as a
// plain database name (its own rule, for expand_dbname).
bool IsConnectionString(absl::string_view dsn) {
  return absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://") ||
         absl::StrContains(dsn, '=');
}

// Parses `dsn` as libpq will, to learn its password. libpq's parse errors
// quote the offending part of the string (a bad percent escape quotes the
// password), so only the text before the first quote is kept:
// "invalid percent-encoded token", "missing \"=\" after", ...
absl::Status ParseDsn(const std::string& dsn, std::string* password) {
  if (!IsConnectionString(dsn)) return absl::OkStatus();
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options == nullptr) {
    std::string reason = error ? error : "out of memory";
    PQfreemem(error);
    reason = reason.substr(0, reason.find('"'));
    return absl::InvalidArgumentError(absl::StrCat(
        "PostgreSQL: the connection string cannot be parsed (",
        absl::StripSuffix(absl::StripTrailingAsciiWhitespace(reason), ":"),
        "); libpq's full message is not shown because it quotes the string"));
  }
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && std::strcmp(o->keyword, "password") == 0) *password = o->val;
  }
  PQconninfoFree(options);
  return absl::OkStatus();
}

// `text` with every occurrence of the connection string and the password
// replaced, should libpq or the server have echoed them.
std::string Redact(std::string text, const std::string& dsn, const std::string& password) {
  for (const std::string* secret : {&dsn, &password}) {
    if (secret->empty()) continue;
    for (size_t at; (at = text.find(*secret)) != std::string::npos;) {
      text.replace(at, secret->size(), "[redacted]");
    }
  }
  return text;
}

// libpq's notices and warnings (e.g. "terminating connection due to
// administrator command") go through the logger like every other line,
// escaped, instead of libpq's default of writing them to stderr raw.
void LogNotice(void* /*arg*/, const char* message) {
  absl::string_view text = absl::StripTrailingAsciiWhitespace(message == nullptr ? "" : message);
  const bool warning = absl::StartsWith(text, "WARNING") || absl::StartsWith(text, "FATAL") ||
                       absl::StartsWith(text, "PANIC") || absl::StartsWith(text, "ERROR");
  spdlog::log(warning ? spdlog::level::warn : spdlog::level::info, "PostgreSQL: {}",
              common::LogSafe(text, common::kLogSafeMessageBytes));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgConn>> PgConn::Connect(const std::string& dsn) {
  // Later keywords override what the connection string says.
  const char* keys[] = {"dbname", "connect_timeout", "keepalives_idle",
                        "keepalives_interval", "keepalives_count",
                        "application_name", nullptr};
  const char* values[] = {dsn.c_str(), "5", "10", "5", "3", "upload-broker", nullptr};
  std::string password;
  UB_RETURN_IF_ERROR(ParseDsn(dsn, &password));
  PGconn* raw = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (raw == nullptr) {
    return absl::ResourceExhaustedError("PostgreSQL: out of memory connecting");
  }
  std::unique_ptr<PgConn> conn(new PgConn(raw));
  PQsetNoticeProcessor(raw, LogNotice, nullptr);
  if (PQstatus(raw) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat(
        "PostgreSQL unreachable: ", Redact(ErrorText(PQerrorMessage(raw)), dsn, password)));
  }
  // A statement stuck behind a lock or a dead server fails instead of
  // stalling the committer forever.
  absl::StatusOr<PgResult> set =
      conn->Exec("SET statement_timeout = '15s'; SET lock_timeout = '10s'",
                 "setting up the session");
  if (!set.ok()) return set.status();
  return conn;
}

PgConn::~PgConn() { PQfinish(conn_); }

absl::StatusOr<PgResult> PgConn::Check(PGresult* raw, absl::string_view what) {
  PgResult result(raw);
  ExecStatusType st = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return result;
  const char* sqlstate =
      result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  std::string text = ErrorText(result ? PQresultErrorMessage(result.get())
                                      : PQerrorMessage(conn_));
  if (text.empty()) text = ErrorText(PQerrorMessage(conn_));
  std::string message = absl::StrCat("PostgreSQL: ", what, ": ", text);
  if (sqlstate == nullptr || broken() || Transient(sqlstate)) {
    return absl::UnavailableError(message);
  }
  if (absl::string_view(sqlstate) == "23505") {
    return absl::AlreadyExistsError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<PgResult> PgConn::Exec(const std::string& sql,
                                      absl::string_view what) {
  return Check(PQexec(conn_, sql.c_str()), what);
}

absl::StatusOr<PgResult> PgConn::Query(const char* sql,
                                       const std::vector<PgParam>& params,
                                       absl::string_view what, bool prepare) {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const PgParam& p : params) {
    values.push_back(p.null ? nullptr : p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  const int n = static_cast<int>(params.size());
  auto it = prepared_.find(absl::string_view(sql));
  if (it == prepared_.end() && prepare && prepared_.size() < kMaxPrepared) {
    std::string name = absl::StrCat("ub", prepared_.size());
    UB_RETURN_IF_ERROR(Check(PQprepare(conn_, name.c_str(), sql, n, nullptr), what).status());
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  if (it != prepared_.end()) {
    return Check(PQexecPrepared(conn_, it->second.c_str(), n, values.data(), lengths.data(),
                                formats.data(), /*resultFormat=*/1),
                 what);
  }
  return Check(PQexecParams(conn_, sql, n, nullptr, values.data(), lengths.data(),
                            formats.data(), /*resultFormat=*/1),
               what);
}

std::string PgTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

int64_t PgInt64(const PGresult* r, int row, int col) {
  const char* v = PQgetvalue(r, row, col);
  const int len = PQgetlength(r, row, col);
  if (PQgetisnull(r, row, col)) return 0;
  if (PQfformat(r, col) == 0) {
    int64_t out = 0;
    return absl::SimpleAtoi(absl::string_view(v, len), &out) ? out : 0;
  }
  if (len == 8) {
    uint64_t be;
    std::memcpy(&be, v, 8);
    return static_cast<int64_t>(be64toh(be));
  }
  if (len == 4) {
    uint32_t be;
    std::memcpy(&be, v, 4);
    return static_cast<int32_t>(be32toh(be));
  }
  if (len == 2) {
    uint16_t be;
    std::memcpy(&be, v, 2);
    return static_cast<int16_t>(be16toh(be));
  }
  return 0;
}

absl::string_view PgBytes(const PGresult* r, int row, int col) {
  return absl::string_view(PQgetvalue(r, row, col),
                           static_cast<size_t>(PQgetlength(r, row, col)));
}

}  // namespace uploadbroker::ledger
