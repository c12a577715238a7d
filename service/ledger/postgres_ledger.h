// PostgresLedger: the Ledger on PostgreSQL, for several brokers sharing one
// database. GroupCommitLedger does the queueing and group commit (one
// transaction per batch, per broker); PgWriter and PgReaders talk to the
// database. See pg_writer.h for how cursors follow commit order across
// brokers and how a lost COMMIT is resolved.
//
// Durability: a batch's `done` callbacks report success only after
// PostgreSQL has acknowledged its COMMIT (durable as the server's fsync and
// synchronous_commit settings make it) or, when that answer was lost, after
// the batch's own marker row was found in the database (pg_writer.h).
// Nothing acknowledged is lost, across server restarts included.
//
// Events from other brokers: a notification thread LISTENs on
// kPgEventChannel (every commit that appends events NOTIFYs the newest
// cursor) and also re-reads the newest cursor every `poll_interval`, so a
// dropped notification connection only delays listeners. Listeners run on
// the committer (own commits) or on that thread (others'), with cursors
// that never go backwards.
//
// Connections: at most Options::max_read_connections + kOtherConnections
// per ledger (see docs/cluster.md for sizing max_connections).
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
    // Read connections (GetUpload, ListUploads, Subscribe's reads, the
    // reconciler's claims, the notification thread's polls) share a pool of
    // at most this many, 1..kMaxReadConnections
    // (`ledger.postgres.max_read_connections`). A read waits up to
    // `read_wait` for a free one, then fails with Unavailable.
    int max_read_connections = 8;
    absl::Duration read_wait = absl::Seconds(5);
  };
  static constexpr int kMaxReadConnections = 256;
  // Besides the read pool, each ledger holds one write connection and one
  // LISTEN connection: at most max_read_connections + 2 in all (a lost
  // COMMIT or a broken connection is replaced, not added to).
  static constexpr int kOtherConnections = 2;

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
