// PgReaders: PostgresLedger's read side, internal to ledger/.
//
// A pool of connections: a call borrows an idle one (or opens one) and
// returns it afterwards; a connection that broke is dropped, so reads
// recover by themselves once the server is back. Each query runs in its own
// snapshot (autocommit, READ COMMITTED). Thread-safe.
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
#include "ledger/engine.h"
#include "ledger/pg_conn.h"

namespace uploadbroker::ledger {

class PgReaders final : public EngineReader {
 public:
  explicit PgReaders(std::string dsn) : dsn_(std::move(dsn)) {}

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

 private:
  // Runs one statement on a pooled connection.
  absl::StatusOr<PgResult> Query(const char* sql, const std::vector<PgParam>& params,
                                 absl::string_view what);

  const std::string dsn_;  // secret
  absl::Mutex mu_;
  std::vector<std::unique_ptr<PgConn>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_PG_READERS_H_
