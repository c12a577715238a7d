// SqliteReaders: the ledger's read side, internal to SqliteLedger.
//
// A small pool of read-only connections, each with its statements prepared
// once. WAL mode lets them read concurrently with each other and with the
// writer; each query sees one committed snapshot. Thread-safe: a call
// borrows an idle connection (or opens one) and returns it afterwards.
#ifndef UPLOADBROKER_LEDGER_SQLITE_READERS_H_
#define UPLOADBROKER_LEDGER_SQLITE_READERS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ledger/engine.h"
#include "ledger/ledger.h"

namespace uploadbroker::ledger {

class SqliteReaders final : public EngineReader {
 public:
  // `path` must name an existing ledger database (SqliteWriter::Open first).
  static absl::StatusOr<std::unique_ptr<SqliteReaders>> Open(
      std::string path, absl::Duration busy_timeout);
  ~SqliteReaders() override;

  absl::StatusOr<Upload> GetUpload(const std::string& upload_id) override;
  absl::StatusOr<UploadPage> ListUploads(const UploadQuery& query) override;
  // One process per file: the lease is not needed and not kept.
  absl::StatusOr<std::vector<Upload>> ClaimExpiredPending(absl::Time cutoff, int limit,
                                                          absl::Time now,
                                                          absl::Duration lease) override;
  absl::StatusOr<EventRecords> ReadEventRecords(uint64_t after, int limit,
                                                size_t max_bytes) override;
  // Highest cursor ever assigned (0 if none), and lowest retained (0 if the
  // log is empty).
  absl::StatusOr<uint64_t> LastCursor() override;
  absl::StatusOr<std::map<v1::UploadState, int64_t>> CountByState() override;
  absl::StatusOr<uint64_t> FirstCursor() override;
  absl::StatusOr<SubscriptionState> GetSubscription(const SubscriptionKey& key,
                                                    absl::Time now) override;
  absl::StatusOr<std::vector<SubscriptionState>> ListSubscriptions(const std::string& caller,
                                                                   absl::Time now) override;
  absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(const SubscriptionKey& key,
                                                          uint64_t after, int limit) override;

 private:
  struct Conn;
  class Lease;

  SqliteReaders(std::string path, absl::Duration busy_timeout);
  // Event-log scans read through a mapped file; every other read through
  // pread() (see kMmapPragma). Each kind has its own idle connections.
  enum class Use { kPointReads = 0, kScans = 1 };
  absl::StatusOr<std::unique_ptr<Conn>> OpenConn(Use use);
  absl::StatusOr<Lease> Acquire(Use use);
  void Release(std::unique_ptr<Conn> conn);

  const std::string path_;
  const absl::Duration busy_timeout_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_[2] ABSL_GUARDED_BY(mu_);  // by Use
};

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SQLITE_READERS_H_
