#include "ledger/postgres_ledger.h"

#include <poll.h>

#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ledger/pg_readers.h"
#include "ledger/pg_schema.h"
#include "ledger/pg_writer.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::ledger {
namespace {

// How often the notification thread checks whether to stop.
constexpr int kWakeMillis = 100;

// A connection that LISTENs on the event channel.
absl::StatusOr<std::unique_ptr<PgConn>> Listen(const std::string& dsn) {
  UB_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, PgConn::Connect(dsn));
  UB_RETURN_IF_ERROR(
      conn->Exec(absl::StrCat("LISTEN ", kPgEventChannel), "listening for events").status());
  return conn;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresLedger>> PostgresLedger::Create(
    Options options) {
  if (options.dsn.empty()) {
    return absl::InvalidArgumentError("ledger.postgres: the connection string is empty");
  }
  if (options.poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ledger.postgres: poll interval must be > 0");
  }
  if (options.max_read_connections < 1 ||
      options.max_read_connections > kMaxReadConnections) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ledger.postgres.max_read_connections must be between 1 and ", kMaxReadConnections,
        ", got ", options.max_read_connections));
  }
  if (options.read_wait <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ledger.postgres: read wait must be > 0");
  }
  UB_RETURN_IF_ERROR(Validate(options.ledger));
  UB_ASSIGN_OR_RETURN(std::unique_ptr<PgWriter> writer, PgWriter::Open(options.dsn));
  auto reader = std::make_unique<PgReaders>(options.dsn, options.max_read_connections,
                                            options.read_wait);
  UB_RETURN_IF_ERROR(reader->LastCursor().status());
  UB_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> listen, Listen(options.dsn));
  return absl::WrapUnique(new PostgresLedger(std::move(options), std::move(writer),
                                             std::move(reader), std::move(listen)));
}

PostgresLedger::PostgresLedger(Options options, std::unique_ptr<EngineWriter> writer,
                               std::unique_ptr<EngineReader> reader,
                               std::unique_ptr<PgConn> listen)
    : GroupCommitLedger(options.ledger, std::move(writer), std::move(reader)),
      dsn_(std::move(options.dsn)),
      poll_interval_(options.poll_interval),
      follower_([this, conn = std::move(listen)]() mutable { FollowLoop(std::move(conn)); }) {}

PostgresLedger::~PostgresLedger() {
  stop_ = true;
  follower_.join();
}

bool PostgresLedger::Healthy() {
  return listening_.load() && GroupCommitLedger::Healthy();
}

void PostgresLedger::FollowLoop(std::unique_ptr<PgConn> conn) {
  absl::Time next_poll = absl::InfinitePast();
  absl::Time next_connect = absl::InfinitePast();
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stop_) {
    const absl::Time now = absl::Now();
    if ((conn == nullptr || conn->broken()) && now >= next_connect) {
      conn.reset();
      absl::StatusOr<std::unique_ptr<PgConn>> fresh = Listen(dsn_);
      if (fresh.ok()) {
        conn = *std::move(fresh);
        backoff = absl::Milliseconds(100);
        next_poll = now;  // catch up on what was missed meanwhile
        spdlog::info("ledger: following PostgreSQL event notifications again");
      } else {
        if (listening_.load()) {
          spdlog::warn("ledger: PostgreSQL notifications lost ({}); retrying",
                       std::string(fresh.status().message()));
        }
        next_connect = now + backoff;
        backoff = std::min(backoff * 2, absl::Seconds(5));
      }
    }
    listening_ = conn != nullptr && !conn->broken();
    uint64_t newest = 0;
    if (conn != nullptr) {
      pollfd pfd{PQsocket(conn->raw()), POLLIN, 0};
      if (poll(&pfd, 1, kWakeMillis) > 0) {
        if (PQconsumeInput(conn->raw()) == 0) continue;  // broken; reconnect
        while (PGnotify* n = PQnotifies(conn->raw())) {
          uint64_t cursor = 0;
          if (absl::SimpleAtoi(n->extra, &cursor)) newest = std::max(newest, cursor);
          PQfreemem(n);
        }
      }
    } else {
      poll(nullptr, 0, kWakeMillis);
    }
    if (absl::Now() >= next_poll) {
      next_poll = absl::Now() + poll_interval_;
      absl::StatusOr<uint64_t> last = reader().LastCursor();
      if (last.ok()) newest = std::max(newest, *last);
    }
    if (newest > 0) NotifyCommitted(newest);
  }
}

}  // namespace uploadbroker::ledger
