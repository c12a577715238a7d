// PgReaders: PostgresLedger's read side, internal to ledger/.
//
// A bounded pool of connections: at most `max_connections` are open at
// once. A call borrows an idle one, or opens one while fewer than that are
// open, or waits for one to be returned; after `max_wait` it fails with
// Unavailable (naming the limit), so a burst of reads queues instead of
// exhausting the server's max_connections. A connection that broke is
// dropped (its slot freed), so reads recover by themselves once the server
// is back. Connections are opened on demand and kept until they break or
// the pool is destroyed. Each query runs in its own snapshot (autocommit,
// READ COMMITTED). Thread-safe.
//
// Because PgWriter numbers events in commit order, ReadEventRecords(after)
// always returns a gap-free run of the committed events after `after`.
#ifndef UPLOADBROKER_LEDGER_PG_READERS_H_
#define UPLOADBROKER_LEDGER_PG_READERS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/engine.h"
#include "ledger/pg_conn.h"

namespace uploadbroker::ledger {

class PgReaders final : public EngineReader {
 public:
  // `max_connections` >= 1 (PostgresLedger::Create validates it).
  PgReaders(std::string dsn, int max_connections, absl::Duration max_wait)
      : dsn_(std::move(dsn)), max_open_(max_connections), max_wait_(max_wait) {}

  absl::StatusOr<Upload> GetUpload(const std::string& upload_id) override;
  absl::StatusOr<UploadPage> ListUploads(const UploadQuery& query) override;
  // Claims with one UPDATE ... FOR UPDATE SKIP LOCKED that sets
  // probe_until, so concurrent brokers get disjoint sets.
  absl::StatusOr<std::vector<Upload>> ClaimExpiredPending(absl::Time cutoff, int limit,
                                                          absl::Time now,
                                                          absl::Duration lease) override;
  absl::StatusOr<EventRecords> ReadEventRecords(uint64_t after, int limit,
                                                size_t max_bytes) override;
  absl::StatusOr<uint64_t> LastCursor() override;
  absl::StatusOr<uint64_t> FirstCursor() override;
  absl::StatusOr<std::map<v1::UploadState, int64_t>> CountByState() override;
  // Subscriptions (pg_subscriptions.cc): one statement each.
  absl::StatusOr<SubscriptionState> GetSubscription(const SubscriptionKey& key,
                                                    absl::Time now) override;
  absl::StatusOr<std::vector<SubscriptionState>> ListSubscriptions(const std::string& caller,
                                                                   absl::Time now) override;
  absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(const SubscriptionKey& key,
                                                          uint64_t after, int limit) override;

 private:
  // Runs one statement on a pooled connection.
  absl::StatusOr<PgResult> Query(const char* sql, const std::vector<PgParam>& params,
                                 absl::string_view what);

  // A connection for one statement: idle, newly opened, or waited for.
  absl::StatusOr<std::unique_ptr<PgConn>> Borrow();
  bool Available() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || open_ < max_open_;
  }
  // Gives it back; a broken one (or null) is closed and frees its slot.
  void Return(std::unique_ptr<PgConn> conn);

  const std::string dsn_;  // secret
  const int max_open_;
  const absl::Duration max_wait_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<PgConn>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + borrowed + being opened
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_PG_READERS_H_
