#include "ledger/sqlite_ledger.h"

#include <utility>

#include "absl/memory/memory.h"
#include "common/status_macros.h"
#include "ledger/sqlite_readers.h"
#include "ledger/sqlite_writer.h"

namespace uploadbroker::ledger {

absl::StatusOr<std::unique_ptr<SqliteLedger>> SqliteLedger::Create(
    Options options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("ledger path is empty");
  }
  if (options.busy_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ledger busy_timeout must be >= 0");
  }
  GroupCommitLedger::Options group;
  group.clock = options.clock;
  group.max_batch = options.max_batch;
  group.retention = {options.retain_max_events, options.retain_max_age,
                     options.retain_settled_age};
  UB_RETURN_IF_ERROR(Validate(group));
  UB_ASSIGN_OR_RETURN(std::unique_ptr<SqliteWriter> writer,
                      SqliteWriter::Open(options.path, options.busy_timeout));
  UB_ASSIGN_OR_RETURN(std::unique_ptr<SqliteReaders> readers,
                      SqliteReaders::Open(options.path, options.busy_timeout));
  return absl::WrapUnique(
      new SqliteLedger(std::move(group), std::move(writer), std::move(readers)));
}

}  // namespace uploadbroker::ledger
