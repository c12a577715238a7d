// OpenLedger: the ledger engine the config asks for. PostgreSQL when
// `ledger.postgres.dsn_file` is set (the file holds the connection string;
// it is read once at startup and never logged), else SQLite at
// `ledger.path`. Errors name the config field or file and the reason,
// never the connection string.
#ifndef UPLOADBROKER_SERVER_OPEN_LEDGER_H_
#define UPLOADBROKER_SERVER_OPEN_LEDGER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "config/config.h"
#include "ledger/ledger.h"

namespace uploadbroker::server {

// `clock` must outlive the ledger.
absl::StatusOr<std::unique_ptr<ledger::Ledger>> OpenLedger(const config::Config& config,
                                                           common::Clock& clock);

// For log lines: "sqlite <path>" or "postgres".
std::string LedgerName(const config::Config& config);

}  // namespace uploadbroker::server

#endif  // UPLOADBROKER_SERVER_OPEN_LEDGER_H_
