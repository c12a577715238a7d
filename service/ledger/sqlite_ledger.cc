#include "ledger/sqlite_ledger.h"

#include <utility>
#include <variant>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "ledger/sqlite_readers.h"

namespace uploadbroker::ledger {

// One queued write. Apply runs on the committer inside the batch
// transaction, in its own savepoint, and keeps its result; Finish runs
// after COMMIT (with its status) and hands the result to the caller.
class WriteOp {
 public:
  virtual ~WriteOp() = default;
  virtual absl::Status Apply(SqliteWriter& writer) = 0;
  virtual void Finish(const absl::Status& commit) = 0;
};

namespace {

// Events deleted per retention pass: small enough that a pass never holds
// up a batch for long.
constexpr int kPruneChunk = 1000;
// Retention runs every this many batches, and after this long idle.
constexpr int kPruneEveryBatches = 64;
constexpr absl::Duration kIdlePruneInterval = absl::Seconds(1);

template <typename T>
class TypedOp final : public WriteOp {
 public:
  using ApplyFn = std::function<absl::StatusOr<T>(SqliteWriter&)>;
  using DoneFn = std::function<void(absl::StatusOr<T>)>;

  TypedOp(ApplyFn apply, DoneFn done)
      : apply_(std::move(apply)), done_(std::move(done)) {
    UB_CHECK(done_ != nullptr);
  }

  absl::Status Apply(SqliteWriter& writer) override {
    result_ = apply_(writer);
    return result_.status();
  }

  void Finish(const absl::Status& commit) override {
    if (commit.ok()) {
      done_(std::move(result_));
    } else {
      done_(commit);
    }
  }

 private:
  ApplyFn apply_;
  DoneFn done_;
  absl::StatusOr<T> result_ = absl::InternalError("write was never applied");
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteLedger>> SqliteLedger::Create(
    Options options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("ledger path is empty");
  }
  if (options.clock == nullptr) {
    return absl::InvalidArgumentError("ledger needs a clock");
  }
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger max_batch must be >= 1, got ", options.max_batch));
  }
  if (options.retain_max_events < 0 ||
      options.retain_max_age < absl::ZeroDuration() ||
      options.busy_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "ledger retention limits and busy_timeout must be >= 0");
  }
  UB_ASSIGN_OR_RETURN(std::unique_ptr<SqliteWriter> writer,
                      SqliteWriter::Open(options.path, options.busy_timeout));
  UB_ASSIGN_OR_RETURN(std::unique_ptr<SqliteReaders> readers,
                      SqliteReaders::Open(options.path, options.busy_timeout));
  return absl::WrapUnique(
      new SqliteLedger(std::move(options), std::move(writer), std::move(readers)));
}

SqliteLedger::SqliteLedger(Options options,
                           std::unique_ptr<SqliteWriter> writer,
                           std::unique_ptr<SqliteReaders> readers)
    : options_(std::move(options)),
      retention_{options_.retain_max_events, options_.retain_max_age},
      writer_(std::move(writer)),
      readers_(std::move(readers)),
      committer_([this] { CommitLoop(); }) {}

SqliteLedger::~SqliteLedger() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  committer_.join();
}

void SqliteLedger::Enqueue(std::unique_ptr<WriteOp> op) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(op));
      return;
    }
  }
  op->Finish(absl::UnavailableError("ledger is shutting down"));
}

void SqliteLedger::CreateIntent(Upload intent,
                                std::function<void(absl::Status)> done) {
  UB_CHECK(done != nullptr);
  Enqueue(std::make_unique<TypedOp<std::monostate>>(
      [intent = std::move(intent)](
          SqliteWriter& writer) mutable -> absl::StatusOr<std::monostate> {
        UB_RETURN_IF_ERROR(writer.CreateIntent(std::move(intent)));
        return std::monostate();
      },
      [done = std::move(done)](absl::StatusOr<std::monostate> result) {
        done(result.status());
      }));
}

void SqliteLedger::CompleteUpload(
    std::string upload_id, Completion completion, CompletionCheck check,
    std::function<void(absl::StatusOr<CompleteResult>)> done) {
  Enqueue(std::make_unique<TypedOp<CompleteResult>>(
      [this, upload_id = std::move(upload_id),
       completion = std::move(completion),
       check = std::move(check)](SqliteWriter& writer) mutable {
        return writer.CompleteUpload(upload_id, std::move(completion), check,
                                     options_.clock->Now());
      },
      std::move(done)));
}

void SqliteLedger::ExpireUpload(std::string upload_id,
                                std::function<void(absl::StatusOr<Event>)> done) {
  Enqueue(std::make_unique<TypedOp<Event>>(
      [this, upload_id = std::move(upload_id)](SqliteWriter& writer) {
        return writer.ExpireUpload(upload_id, options_.clock->Now());
      },
      std::move(done)));
}

std::unique_ptr<WriteOp> SqliteLedger::MakePruneOp(
    std::function<void(absl::StatusOr<int64_t>)> done) {
  return std::make_unique<TypedOp<int64_t>>(
      [this](SqliteWriter& writer) {
        return writer.Prune(retention_, options_.clock->Now(), kPruneChunk);
      },
      std::move(done));
}

absl::StatusOr<int64_t> SqliteLedger::PruneNow() {
  absl::Notification finished;
  absl::StatusOr<int64_t> result;
  Enqueue(MakePruneOp([&](absl::StatusOr<int64_t> deleted) {
    result = std::move(deleted);
    finished.Notify();
  }));
  finished.WaitForNotification();
  return result;
}

void SqliteLedger::CommitLoop() {
  int batches_since_prune = 0;
  bool prune_backlog = false;  // the last pass deleted a full chunk
  for (;;) {
    std::vector<std::unique_ptr<WriteOp>> batch;
    bool idle = false;
    {
      absl::MutexLock lock(&mu_);
      const absl::Condition has_work(this, &SqliteLedger::HasWork);
      if (!retention_.enabled()) {
        mu_.Await(has_work);
      } else if (!prune_backlog) {
        idle = !mu_.AwaitWithTimeout(has_work, kIdlePruneInterval);
      }
      if (queue_.empty() && stopping_) return;
      while (!queue_.empty() &&
             batch.size() < static_cast<size_t>(options_.max_batch)) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (retention_.enabled() &&
        (prune_backlog || idle || ++batches_since_prune >= kPruneEveryBatches)) {
      batches_since_prune = 0;
      batch.push_back(MakePruneOp([&prune_backlog](absl::StatusOr<int64_t> n) {
        prune_backlog = n.ok() && *n >= kPruneChunk;
      }));
    }
    if (!batch.empty()) RunBatch(batch);
  }
}

void SqliteLedger::RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch) {
  absl::Status status = writer_->Begin();
  const uint64_t cursor_before = writer_->last_cursor();
  for (size_t i = 0; status.ok() && i < batch.size(); ++i) {
    status = writer_->Savepoint();
    if (!status.ok()) break;
    absl::Status op_status = batch[i]->Apply(*writer_);
    status = op_status.ok() ? writer_->ReleaseSavepoint()
                            : writer_->RollbackSavepoint(op_status);
  }
  if (status.ok()) status = writer_->Commit();
  if (!status.ok()) {
    writer_->Rollback();
    status = absl::Status(
        status.code(),
        absl::StrCat(status.message(), "; no write in this batch was saved"));
  }
  healthy_.store(status.ok());
  for (auto& op : batch) op->Finish(status);
  if (status.ok() && writer_->last_cursor() > cursor_before) {
    Notify(writer_->last_cursor());
  }
}

int SqliteLedger::AddListener(std::function<void(uint64_t)> fn) {
  UB_CHECK(fn != nullptr);
  absl::MutexLock lock(&listeners_mu_);
  int id = next_listener_id_++;
  listeners_.emplace(
      id, std::make_shared<const std::function<void(uint64_t)>>(std::move(fn)));
  return id;
}

void SqliteLedger::RemoveListener(int id) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(id);
  // Wait out a notification round that may still hold a copy of `fn`,
  // unless we are inside it.
  if (std::this_thread::get_id() != committer_.get_id()) {
    listeners_mu_.Await(absl::Condition(&listeners_quiet_));
  }
}

void SqliteLedger::Notify(uint64_t cursor) {
  std::vector<std::shared_ptr<const std::function<void(uint64_t)>>> fns;
  {
    absl::MutexLock lock(&listeners_mu_);
    if (listeners_.empty()) return;
    for (const auto& entry : listeners_) fns.push_back(entry.second);
    listeners_quiet_ = false;
  }
  for (const auto& fn : fns) (*fn)(cursor);
  absl::MutexLock lock(&listeners_mu_);
  listeners_quiet_ = true;
}

bool SqliteLedger::Healthy() {
  if (!healthy_.load()) return false;
  absl::MutexLock lock(&mu_);
  return !stopping_;
}

absl::StatusOr<Upload> SqliteLedger::GetUpload(const std::string& upload_id) {
  return readers_->GetUpload(upload_id);
}

absl::StatusOr<UploadPage> SqliteLedger::ListUploads(const UploadQuery& query) {
  return readers_->ListUploads(query);
}

absl::StatusOr<std::vector<Upload>> SqliteLedger::ListExpiredPending(
    absl::Time cutoff, int limit) {
  return readers_->ListExpiredPending(cutoff, limit);
}

absl::StatusOr<EventRecords> SqliteLedger::ReadEventRecords(uint64_t after, int limit,
                                                            size_t max_bytes) {
  return readers_->ReadEventRecords(after, limit, max_bytes);
}

absl::StatusOr<std::map<v1::UploadState, int64_t>> SqliteLedger::CountUploadsByState() {
  return readers_->CountByState();
}

absl::StatusOr<uint64_t> SqliteLedger::LastCursor() {
  return readers_->LastCursor();
}

absl::StatusOr<uint64_t> SqliteLedger::FirstCursor() {
  return readers_->FirstCursor();
}

}  // namespace uploadbroker::ledger
