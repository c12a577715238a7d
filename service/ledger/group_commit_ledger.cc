#include "ledger/group_commit_ledger.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "common/check.h"
#include "common/status_macros.h"
#include "ledger/subscription_ops.h"
#include "ledger/transitions.h"

namespace uploadbroker::ledger {

// One queued write. Apply runs on the committer inside the batch
// transaction, in its own savepoint, and keeps its result; Finish runs
// after COMMIT (with its status) and hands the result to the caller.
class WriteOp {
 public:
  virtual ~WriteOp() = default;
  // Non-null for a creation: its intent, which RunBatch stores together
  // with the creations next to it (EngineWriter::InsertIntents), setting
  // the result with SetCreated instead of calling Apply.
  virtual Upload* new_intent() { return nullptr; }
  virtual void SetCreated(absl::Status) {}
  // The upload whose intent Apply settles, appending an event (see
  // EngineWriter::PrepareToAppend and LockIntents); empty if it appends none.
  virtual const std::string& settles() const = 0;
  // The subscription or target whose rows Apply changes, if any (see
  // EngineWriter::LockSubscriptions).
  virtual const SubscriptionKey* subscription() const { return nullptr; }
  virtual const std::string* target() const { return nullptr; }
  virtual absl::Status Apply(EngineWriter& writer) = 0;
  virtual void Finish(const absl::Status& commit) = 0;
};

namespace {

// Rows deleted per retention pass: small enough that a pass never holds
// up a batch for long.
constexpr int kPruneChunk = 1000;
// Retention runs every this many batches, and after this long idle.
constexpr int kPruneEveryBatches = 64;
constexpr absl::Duration kIdlePruneInterval = absl::Seconds(1);
// While unhealthy and idle, an empty transaction this often finds out
// whether the engine works again.
constexpr absl::Duration kProbeInterval = absl::Seconds(1);

// Notification rounds the current thread is inside (RemoveListener must not
// wait for its own round).
thread_local int tls_notify_depth = 0;

template <typename T>
class TypedOp final : public WriteOp {
 public:
  using ApplyFn = std::function<absl::StatusOr<T>(EngineWriter&)>;
  using DoneFn = std::function<void(absl::StatusOr<T>)>;

  TypedOp(std::string settles, ApplyFn apply, DoneFn done)
      : settles_(std::move(settles)), apply_(std::move(apply)), done_(std::move(done)) {
    UB_CHECK(done_ != nullptr);
  }
  // An operation on one subscription's rows, or on one target's lease.
  TypedOp(SubscriptionKey key, ApplyFn apply, DoneFn done)
      : TypedOp(std::string(), std::move(apply), std::move(done)) {
    key_ = std::move(key);
  }
  static std::unique_ptr<TypedOp> ForTarget(std::string target, ApplyFn apply, DoneFn done) {
    auto op = std::make_unique<TypedOp>(std::string(), std::move(apply), std::move(done));
    op->target_ = std::move(target);
    return op;
  }

  const std::string& settles() const override { return settles_; }
  const SubscriptionKey* subscription() const override {
    return key_.has_value() ? &*key_ : nullptr;
  }
  const std::string* target() const override {
    return target_.has_value() ? &*target_ : nullptr;
  }

  absl::Status Apply(EngineWriter& writer) override {
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
  const std::string settles_;
  std::optional<SubscriptionKey> key_;
  std::optional<std::string> target_;
  ApplyFn apply_;
  DoneFn done_;
  absl::StatusOr<T> result_ = absl::InternalError("write was never applied");
};

// A queued CreateIntent.
class CreateOp final : public WriteOp {
 public:
  CreateOp(Upload intent, std::function<void(absl::Status)> done)
      : intent_(std::move(intent)), done_(std::move(done)) {
    UB_CHECK(done_ != nullptr);
  }
  const std::string& settles() const override { return kNone; }
  Upload* new_intent() override { return &intent_; }
  void SetCreated(absl::Status status) override { result_ = std::move(status); }
  absl::Status Apply(EngineWriter&) override {
    return absl::InternalError("creations are stored by RunBatch");
  }
  void Finish(const absl::Status& commit) override { done_(commit.ok() ? result_ : commit); }

 private:
  Upload intent_;
  std::function<void(absl::Status)> done_;
  absl::Status result_ = absl::InternalError("intent was never stored");
  inline static const std::string kNone;
};

// The issue time encoded in an upload id ("up_" + 12 hex digits of Unix
// milliseconds + random), or InfinitePast if `id` is not of that form.
absl::Time IssuedAt(absl::string_view id) {
  uint64_t millis = 0;
  if (id.size() < 15 || !absl::StartsWith(id, "up_") ||
      !absl::SimpleHexAtoi(id.substr(3, 12), &millis)) {
    return absl::InfinitePast();
  }
  return absl::FromUnixMillis(static_cast<int64_t>(millis));
}

}  // namespace

absl::Status GroupCommitLedger::Validate(const Options& options) {
  if (options.clock == nullptr) {
    return absl::InvalidArgumentError("ledger needs a clock");
  }
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger max_batch must be >= 1, got ", options.max_batch));
  }
  const Retention& r = options.retention;
  if (r.max_events < 0 || r.max_age < absl::ZeroDuration() ||
      r.settled_max_age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ledger retention limits must be >= 0");
  }
  return absl::OkStatus();
}

GroupCommitLedger::GroupCommitLedger(Options options,
                                     std::unique_ptr<EngineWriter> writer,
                                     std::unique_ptr<EngineReader> reader)
    : options_(std::move(options)),
      writer_(std::move(writer)),
      reader_(std::move(reader)),
      committer_([this] { CommitLoop(); }) {}

GroupCommitLedger::~GroupCommitLedger() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  committer_.join();
}

void GroupCommitLedger::Enqueue(std::unique_ptr<WriteOp> op) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(op));
      return;
    }
  }
  op->Finish(absl::UnavailableError("ledger is shutting down"));
}

void GroupCommitLedger::CreateIntent(Upload intent,
                                     std::function<void(absl::Status)> done) {
  Enqueue(std::make_unique<CreateOp>(std::move(intent), std::move(done)));
}

void GroupCommitLedger::CompleteUpload(
    std::string upload_id, Completion completion, CompletionCheck check,
    std::function<void(absl::StatusOr<CompleteResult>)> done) {
  std::string settles = upload_id;
  Enqueue(std::make_unique<TypedOp<CompleteResult>>(
      std::move(settles),
      [this, upload_id = std::move(upload_id),
       completion = std::move(completion),
       check = std::move(check)](EngineWriter& writer) mutable {
        return CompleteUploadIn(writer, upload_id, std::move(completion), check,
                                options_.clock->Now());
      },
      std::move(done)));
}

void GroupCommitLedger::ExpireUpload(
    std::string upload_id, v1::ExpiryReason reason,
    std::function<void(absl::StatusOr<Event>)> done) {
  std::string settles = upload_id;
  Enqueue(std::make_unique<TypedOp<Event>>(
      std::move(settles),
      [this, upload_id = std::move(upload_id), reason](EngineWriter& writer) {
        return ExpireUploadIn(writer, upload_id, reason, options_.clock->Now());
      },
      std::move(done)));
}

std::unique_ptr<WriteOp> GroupCommitLedger::MakePruneOp(
    std::function<void(absl::StatusOr<int64_t>)> done) {
  return std::make_unique<TypedOp<int64_t>>(
      /*settles=*/std::string(),
      [this](EngineWriter& writer) {
        return writer.Prune(options_.retention, options_.clock->Now(),
                            kPruneChunk);
      },
      std::move(done));
}

absl::StatusOr<int64_t> GroupCommitLedger::PruneNow() {
  absl::Notification finished;
  absl::StatusOr<int64_t> result;
  Enqueue(MakePruneOp([&](absl::StatusOr<int64_t> deleted) {
    result = std::move(deleted);
    finished.Notify();
  }));
  finished.WaitForNotification();
  return result;
}

void GroupCommitLedger::CommitLoop() {
  const bool retention = options_.retention.enabled();
  int batches_since_prune = 0;
  bool prune_backlog = false;  // the last pass deleted a full chunk
  for (;;) {
    std::vector<std::unique_ptr<WriteOp>> batch;
    bool idle = false;
    {
      absl::MutexLock lock(&mu_);
      const absl::Condition has_work(this, &GroupCommitLedger::HasWork);
      if (!healthy_.load()) {
        idle = !mu_.AwaitWithTimeout(has_work, kProbeInterval);
      } else if (!retention) {
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
    if (retention &&
        (prune_backlog || idle || ++batches_since_prune >= kPruneEveryBatches)) {
      batches_since_prune = 0;
      batch.push_back(MakePruneOp([&prune_backlog](absl::StatusOr<int64_t> n) {
        prune_backlog = n.ok() && *n >= kPruneChunk;
      }));
    }
    if (!batch.empty() || (idle && !healthy_.load())) RunBatch(batch);
  }
}

void GroupCommitLedger::RunBatch(std::vector<std::unique_ptr<WriteOp>>& batch) {
  absl::Status status = writer_->Begin();
  const uint64_t cursor_before = writer_->last_cursor();
  if (status.ok()) status = LockSubscriptions(batch);
  bool prepared = false;
  for (size_t i = 0; status.ok() && i < batch.size(); ++i) {
    if (batch[i]->new_intent() != nullptr) {
      size_t end = i;
      while (end < batch.size() && batch[end]->new_intent() != nullptr) ++end;
      status = StoreCreations(batch, i, end);
      i = end - 1;
      continue;
    }
    if (!batch[i]->settles().empty() && !prepared) {
      // Number cursors from here on, and lock every intent the batch will
      // settle in one go.
      prepared = true;
      status = writer_->PrepareToAppend();
      std::vector<std::string> ids;
      for (size_t j = i; status.ok() && j < batch.size(); ++j) {
        if (!batch[j]->settles().empty()) ids.push_back(batch[j]->settles());
      }
      if (status.ok()) status = writer_->LockIntents(ids);
      if (!status.ok()) break;
    }
    status = writer_->Savepoint();
    if (!status.ok()) break;
    absl::Status op_status = batch[i]->Apply(*writer_);
    status = op_status.ok() ? writer_->ReleaseSavepoint()
                            : writer_->RollbackSavepoint(op_status);
  }
  bool committing = false;
  if (status.ok()) {
    committing = true;
    status = writer_->Commit();
  }
  if (!status.ok()) {
    writer_->Rollback();
    // A failed Commit says itself whether the batch was written (a lost
    // COMMIT whose outcome stayed unknown may have been); before it,
    // nothing was.
    if (!committing) {
      status = absl::Status(
          status.code(),
          absl::StrCat(status.message(), "; no write in this batch was saved"));
    }
  }
  healthy_.store(status.ok());
  for (auto& op : batch) op->Finish(status);
  if (status.ok() && writer_->last_cursor() > cursor_before) {
    NotifyCommitted(writer_->last_cursor());
  }
}

absl::Status GroupCommitLedger::LockSubscriptions(
    const std::vector<std::unique_ptr<WriteOp>>& batch) {
  std::vector<SubscriptionKey> keys;
  std::vector<std::string> targets;
  // Keys an operation will refuse are left out: they name nothing, and on
  // PostgreSQL bad text would fail the statement and with it the batch.
  for (const auto& op : batch) {
    if (op->subscription() != nullptr && CheckSubscriptionKey(*op->subscription()).ok()) {
      keys.push_back(*op->subscription());
    }
    if (op->target() != nullptr && CheckTargetName(*op->target()).ok()) {
      targets.push_back(*op->target());
    }
  }
  if (keys.empty() && targets.empty()) return absl::OkStatus();
  auto less = [](const SubscriptionKey& a, const SubscriptionKey& b) {
    return std::tie(a.caller, a.name) < std::tie(b.caller, b.name);
  };
  std::sort(keys.begin(), keys.end(), less);
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  return writer_->LockSubscriptions(keys, targets);
}

absl::Status GroupCommitLedger::StoreCreations(std::vector<std::unique_ptr<WriteOp>>& batch,
                                               size_t begin, size_t end) {
  std::vector<const Upload*> intents;
  std::vector<WriteOp*> ops;
  absl::flat_hash_set<std::string> ids;
  for (size_t i = begin; i < end; ++i) {
    Upload& intent = *batch[i]->new_intent();
    absl::Status checked = CheckNewIntent(intent);
    if (checked.ok() && !ids.insert(intent.upload_id()).second) {
      checked = absl::AlreadyExistsError(
          absl::StrCat("upload_id ", intent.upload_id(), " already exists"));
    }
    if (!checked.ok()) {
      batch[i]->SetCreated(std::move(checked));
      continue;
    }
    intents.push_back(&intent);
    ops.push_back(batch[i].get());
  }
  if (intents.empty()) return absl::OkStatus();
  UB_ASSIGN_OR_RETURN(std::vector<absl::Status> stored, writer_->InsertIntents(intents));
  UB_CHECK(stored.size() == ops.size());
  for (size_t i = 0; i < ops.size(); ++i) ops[i]->SetCreated(std::move(stored[i]));
  return absl::OkStatus();
}

int GroupCommitLedger::AddListener(std::function<void(uint64_t)> fn) {
  UB_CHECK(fn != nullptr);
  absl::MutexLock lock(&listeners_mu_);
  int id = next_listener_id_++;
  listeners_.emplace(
      id, std::make_shared<const std::function<void(uint64_t)>>(std::move(fn)));
  return id;
}

void GroupCommitLedger::RemoveListener(int id) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(id);
  // Wait out notification rounds that may still hold a copy of `fn`,
  // unless we are inside one.
  if (tls_notify_depth == 0) {
    listeners_mu_.Await(absl::Condition(
        +[](int* rounds) { return *rounds == 0; }, &rounds_));
  }
}

void GroupCommitLedger::NotifyCommitted(uint64_t cursor) {
  std::vector<std::shared_ptr<const std::function<void(uint64_t)>>> fns;
  {
    absl::MutexLock lock(&listeners_mu_);
    if (cursor <= notified_) return;
    notified_ = cursor;
    if (listeners_.empty()) return;
    for (const auto& entry : listeners_) fns.push_back(entry.second);
    ++rounds_;
  }
  ++tls_notify_depth;
  for (const auto& fn : fns) (*fn)(cursor);
  --tls_notify_depth;
  absl::MutexLock lock(&listeners_mu_);
  --rounds_;
}

bool GroupCommitLedger::Healthy() {
  if (!healthy_.load()) return false;
  absl::MutexLock lock(&mu_);
  return !stopping_;
}

absl::StatusOr<Upload> GroupCommitLedger::GetUpload(const std::string& upload_id) {
  absl::StatusOr<Upload> upload = reader_->GetUpload(upload_id);
  const absl::Duration keep = options_.retention.settled_max_age;
  if (absl::IsNotFound(upload.status()) && keep > absl::ZeroDuration() &&
      IssuedAt(upload_id) < options_.clock->Now() - keep) {
    return absl::NotFoundError(absl::StrCat(
        "no upload ", upload_id, ": it was issued more than ",
        absl::FormatDuration(keep),
        " ago and has aged out (settled uploads are kept for ledger.retain_settled)"));
  }
  return upload;
}

absl::StatusOr<UploadPage> GroupCommitLedger::ListUploads(const UploadQuery& query) {
  return reader_->ListUploads(query);
}

absl::StatusOr<std::vector<Upload>> GroupCommitLedger::ClaimExpiredPending(
    absl::Time cutoff, int limit, absl::Duration lease) {
  return reader_->ClaimExpiredPending(cutoff, limit, options_.clock->Now(), lease);
}

absl::StatusOr<EventRecords> GroupCommitLedger::ReadEventRecords(
    uint64_t after, int limit, size_t max_bytes) {
  return reader_->ReadEventRecords(after, limit, max_bytes);
}

absl::StatusOr<std::map<v1::UploadState, int64_t>>
GroupCommitLedger::CountUploadsByState() {
  return reader_->CountByState();
}

absl::StatusOr<uint64_t> GroupCommitLedger::LastCursor() {
  return reader_->LastCursor();
}

absl::StatusOr<uint64_t> GroupCommitLedger::FirstCursor() {
  return reader_->FirstCursor();
}

}  // namespace uploadbroker::ledger

// --- Durable subscriptions: each write one operation of an ordinary batch.

namespace uploadbroker::ledger {

void GroupCommitLedger::CreateSubscription(
    SubscriptionSpec spec, std::function<void(absl::StatusOr<SubscriptionState>)> done) {
  SubscriptionKey key = spec.key;
  Enqueue(std::make_unique<TypedOp<SubscriptionState>>(
      std::move(key),
      [this, spec = std::move(spec)](EngineWriter& w) {
        return CreateSubscriptionIn(w, spec, options_.clock->Now());
      },
      std::move(done)));
}

void GroupCommitLedger::DeleteSubscription(SubscriptionKey key,
                                           std::function<void(absl::Status)> done) {
  SubscriptionKey locked = key;
  Enqueue(std::make_unique<TypedOp<bool>>(
      std::move(locked),
      [key = std::move(key)](EngineWriter& w) -> absl::StatusOr<bool> {
        UB_RETURN_IF_ERROR(DeleteSubscriptionIn(w, key));
        return true;
      },
      [done = std::move(done)](absl::StatusOr<bool> r) { done(r.status()); }));
}

absl::StatusOr<SubscriptionState> GroupCommitLedger::GetSubscription(const SubscriptionKey& key) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  return reader_->GetSubscription(key, options_.clock->Now());
}

absl::StatusOr<std::vector<SubscriptionState>> GroupCommitLedger::ListSubscriptions(
    const std::string& caller) {
  if (caller.size() > kMaxCallerBytes) {
    return absl::InvalidArgumentError(absl::StrCat("caller must be at most ", kMaxCallerBytes,
                                                   " bytes"));
  }
  return reader_->ListSubscriptions(caller, options_.clock->Now());
}

void GroupCommitLedger::LeaseEvents(
    SubscriptionKey key, std::string holder, std::vector<uint64_t> candidates,
    uint64_t scanned_through, int max,
    std::function<void(absl::StatusOr<std::vector<Lease>>)> done) {
  SubscriptionKey locked = key;
  Enqueue(std::make_unique<TypedOp<std::vector<Lease>>>(
      std::move(locked),
      [this, key = std::move(key), holder = std::move(holder),
       candidates = std::move(candidates), scanned_through, max](EngineWriter& w) {
        return LeaseEventsIn(w, key, holder, candidates, scanned_through, max,
                             options_.clock->Now());
      },
      std::move(done)));
}

void GroupCommitLedger::AckEvents(SubscriptionKey key, std::vector<uint64_t> cursors,
                                  std::function<void(absl::StatusOr<AckResult>)> done) {
  SubscriptionKey locked = key;
  Enqueue(std::make_unique<TypedOp<AckResult>>(
      std::move(locked),
      [key = std::move(key), cursors = std::move(cursors)](EngineWriter& w) {
        return AckEventsIn(w, key, cursors);
      },
      std::move(done)));
}

void GroupCommitLedger::NackEvents(SubscriptionKey key, std::vector<uint64_t> cursors,
                                   std::string reason, absl::Duration retry_after,
                                   std::function<void(absl::StatusOr<AckResult>)> done) {
  SubscriptionKey locked = key;
  Enqueue(std::make_unique<TypedOp<AckResult>>(
      std::move(locked),
      [this, key = std::move(key), cursors = std::move(cursors), reason = std::move(reason),
       retry_after](EngineWriter& w) {
        return NackEventsIn(w, key, cursors, reason, retry_after, options_.clock->Now());
      },
      std::move(done)));
}

void GroupCommitLedger::ExtendLeases(
    SubscriptionKey key, std::string holder, std::vector<uint64_t> cursors,
    absl::Duration extension,
    std::function<void(absl::StatusOr<std::vector<uint64_t>>)> done) {
  SubscriptionKey locked = key;
  Enqueue(std::make_unique<TypedOp<std::vector<uint64_t>>>(
      std::move(locked),
      [this, key = std::move(key), holder = std::move(holder), cursors = std::move(cursors),
       extension](EngineWriter& w) {
        return ExtendLeasesIn(w, key, holder, cursors, extension, options_.clock->Now());
      },
      std::move(done)));
}

absl::StatusOr<std::vector<DeadLetter>> GroupCommitLedger::ListDeadLetters(
    const SubscriptionKey& key, uint64_t after, int limit) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  if (limit < 1 || limit > kMaxDeadLetterPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be 1..", kMaxDeadLetterPage, ", got ", limit));
  }
  if (after > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("after is out of range");
  }
  return reader_->ListDeadLetters(key, after, limit);
}

void GroupCommitLedger::RedriveDeadLetters(SubscriptionKey key, std::vector<uint64_t> cursors,
                                           std::function<void(absl::StatusOr<int64_t>)> done) {
  SubscriptionKey locked = key;
  Enqueue(std::make_unique<TypedOp<int64_t>>(
      std::move(locked),
      [this, key = std::move(key), cursors = std::move(cursors)](EngineWriter& w) {
        return RedriveDeadLettersIn(w, key, cursors, options_.clock->Now());
      },
      std::move(done)));
}

void GroupCommitLedger::ClaimTarget(std::string name, std::string holder, absl::Duration lease,
                                    std::function<void(absl::StatusOr<bool>)> done) {
  std::string locked = name;
  Enqueue(TypedOp<bool>::ForTarget(
      std::move(locked),
      [this, name = std::move(name), holder = std::move(holder), lease](EngineWriter& w) {
        return ClaimTargetIn(w, name, holder, lease, options_.clock->Now());
      },
      std::move(done)));
}

void GroupCommitLedger::ReleaseTarget(std::string name, std::string holder,
                                      std::function<void(absl::Status)> done) {
  std::string locked = name;
  Enqueue(TypedOp<bool>::ForTarget(
      std::move(locked),
      [name = std::move(name), holder = std::move(holder)](EngineWriter& w)
          -> absl::StatusOr<bool> {
        UB_RETURN_IF_ERROR(ReleaseTargetIn(w, name, holder));
        return true;
      },
      [done = std::move(done)](absl::StatusOr<bool> r) { done(r.status()); }));
}

}  // namespace uploadbroker::ledger
