// PostgresLedger: the Ledger on PostgreSQL, for several brokers sharing one
// database. GroupCommitLedger does the queueing and group commit (one
// transaction per batch, per broker); PgWriter and PgReaders talk to the
// database. See pg_writer.h for how cursors follow commit order across
// brokers and how a lost COMMIT is resolved.
//
// Durability: a batch's `done` callbacks run only after PostgreSQL has
// acknowledged its COMMIT (durable as the server's fsync and
// synchronous_commit settings make it). Nothing acknowledged is lost.
//
// Events from other brokers: a notification thread LISTENs on
// kPgEventChannel (every commit that appends events NOTIFYs the newest
// cursor) and also re-reads the newest cursor every `poll_interval`, so a
// dropped notification connection only delays listeners. Listeners run on
// the committer (own commits) or on that thread (others'), with cursors
// that never go backwards.
//
// Health: false while the database cannot be reached (the notification
// connection is down, or the last commit failed); it recovers by itself.
#ifndef UPLOADBROKER_LEDGER_POSTGRES_LEDGER_H_
#define UPLOADBROKER_LEDGER_POSTGRES_LEDGER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/group_commit_ledger.h"
#include "ledger/pg_conn.h"

namespace uploadbroker::ledger {

class PostgresLedger final : public GroupCommitLedger {
 public:
  struct Options {
    // libpq connection string or URI. Secret: it is never logged nor put
    // into an error.
    std::string dsn;
    GroupCommitLedger::Options ledger;
    absl::Duration poll_interval = absl::Seconds(1);
  };

  // Connects, creates or migrates the schema under a lock, and starts the
  // committer and the notification thread. Unavailable when the database
  // cannot be reached; FailedPrecondition for a schema newer than this
  // build; InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<PostgresLedger>> Create(Options options);

  // Stops the notification thread, then shuts down as GroupCommitLedger.
  ~PostgresLedger() override;

  bool Healthy() override;

 private:
  PostgresLedger(Options options, std::unique_ptr<EngineWriter> writer,
                 std::unique_ptr<EngineReader> reader, std::unique_ptr<PgConn> listen);
  // Runs on follower_, owning the LISTEN connection.
  void FollowLoop(std::unique_ptr<PgConn> conn);

  const std::string dsn_;
  const absl::Duration poll_interval_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> listening_{true};
  std::thread follower_;
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_POSTGRES_LEDGER_H_
