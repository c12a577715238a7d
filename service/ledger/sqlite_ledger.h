// SqliteLedger: the embedded Ledger engine, one SQLite file in WAL mode,
// behind GroupCommitLedger (group commit, listeners, retention; see
// group_commit_ledger.h for threads and the write contract).
//
// Durability: a batch is committed with synchronous=FULL (fsynced) before
// any of its `done` callbacks runs. A crash loses only writes whose
// callback has not run yet.
//
// Cursors: strictly increasing and gap-free in commit order, never reused,
// even after retention has deleted every event. LastCursor() is the newest
// cursor ever assigned, so it stays put when retention empties the log;
// FirstCursor() is then 0. One process writes the file at a time.
#ifndef UPLOADBROKER_LEDGER_SQLITE_LEDGER_H_
#define UPLOADBROKER_LEDGER_SQLITE_LEDGER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ledger/group_commit_ledger.h"

namespace uploadbroker::ledger {

class SqliteLedger final : public GroupCommitLedger {
 public:
  struct Options {
    // Database file; created (with its schema) if missing. Its directory
    // must exist and be writable (WAL needs side files next to it).
    std::string path;
    // Source of committed_at / completed_at. Not owned; required; must
    // outlive the ledger.
    common::Clock* clock = nullptr;
    // Most operations committed in one transaction.
    int max_batch = 256;
    // Retention of events; 0 means unlimited for each.
    int64_t retain_max_events = 0;
    absl::Duration retain_max_age = absl::ZeroDuration();
    // Settled intents older than this are deleted; 0 keeps them forever.
    absl::Duration retain_settled_age = absl::ZeroDuration();
    // How long a statement waits for a lock held by another process (or a
    // checkpoint) before failing with Unavailable.
    absl::Duration busy_timeout = absl::Seconds(5);
  };

  // Opens or creates the ledger and starts its committer. Errors name the
  // file and the reason: InvalidArgument for bad options, Unavailable when
  // the file cannot be opened or written, DataLoss when it is not a ledger
  // database, FailedPrecondition for an unknown schema version.
  static absl::StatusOr<std::unique_ptr<SqliteLedger>> Create(Options options);

 private:
  using GroupCommitLedger::GroupCommitLedger;
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SQLITE_LEDGER_H_
