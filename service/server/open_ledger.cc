#include "server/open_ledger.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "ledger/postgres_ledger.h"
#include "ledger/sqlite_ledger.h"

namespace uploadbroker::server {
namespace {

// A DSN file larger than this is not a connection string.
constexpr std::streamsize kMaxDsnBytes = 64 * 1024;

absl::StatusOr<std::string> ReadDsn(const config::Config& config) {
  const std::string& path = config.postgres_dsn_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat(
        config.source, ": ledger.postgres.dsn_file: cannot read ", path));
  }
  std::string text(kMaxDsnBytes + 1, '\0');
  in.read(text.data(), kMaxDsnBytes + 1);
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > static_cast<size_t>(kMaxDsnBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source, ": ledger.postgres.dsn_file: ", path, " is larger than 64 KiB"));
  }
  std::string dsn(absl::StripAsciiWhitespace(text));
  if (dsn.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source, ": ledger.postgres.dsn_file: ", path, " is empty"));
  }
  return dsn;
}

}  // namespace

std::string LedgerName(const config::Config& config) {
  if (!config.postgres_dsn_file.empty()) return "postgres";
  return absl::StrCat("sqlite ", config.ledger_path);
}

absl::StatusOr<std::unique_ptr<ledger::Ledger>> OpenLedger(const config::Config& config,
                                                           common::Clock& clock) {
  if (!config.postgres_dsn_file.empty()) {
    ledger::PostgresLedger::Options po;
    UB_ASSIGN_OR_RETURN(po.dsn, ReadDsn(config));
    po.ledger.clock = &clock;
    po.max_read_connections = static_cast<int>(config.postgres_max_read_connections);
    po.ledger.retention = {config.retain_events, config.retain_age, config.retain_settled};
    absl::StatusOr<std::unique_ptr<ledger::PostgresLedger>> pg =
        ledger::PostgresLedger::Create(std::move(po));
    if (!pg.ok()) {
      return absl::Status(pg.status().code(),
                          absl::StrCat(config.source, ": ledger.postgres: ",
                                       pg.status().message()));
    }
    return std::unique_ptr<ledger::Ledger>(*std::move(pg));
  }
  ledger::SqliteLedger::Options lo;
  lo.path = config.ledger_path;
  lo.clock = &clock;
  lo.retain_max_events = config.retain_events;
  lo.retain_max_age = config.retain_age;
  lo.retain_settled_age = config.retain_settled;
  UB_ASSIGN_OR_RETURN(std::unique_ptr<ledger::SqliteLedger> sqlite,
                      ledger::SqliteLedger::Create(lo));
  return std::unique_ptr<ledger::Ledger>(std::move(sqlite));
}

}  // namespace uploadbroker::server
