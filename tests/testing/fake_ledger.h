// FakeLedger: the Ledger interface's in-memory implementation, for tests of
// the components above the ledger (issue, rpc, health, server routes).
//
// It keeps the interface's contract (service/ledger/ledger.h), not an
// engine's durability:
//   * writes are queued and applied in order on one thread the fake owns;
//     `done` and the listeners run there, after the write applied and with
//     no lock held (so, as with the real engines, a `done` that calls back
//     into the ledger synchronously would deadlock a *Sync helper);
//   * CompleteUpload runs `check` on the stored intent first, returns the
//     earlier event with appended=false for a repeat, FailedPrecondition for
//     an EXPIRED intent; ExpireUpload only takes PENDING intents;
//   * cursors start at 1, grow by one per event, and are never reused;
//     nothing is pruned, so FirstCursor is 1 once an event exists;
//   * ClaimExpiredPending honours the lease against the injected clock: an
//     intent returned is skipped by later calls until the lease runs out.
// Test controls: SetHealthy(false) makes Healthy() false and every write
// fail with Unavailable (as a ledger that cannot commit does); WaitIdle()
// blocks until every queued write has run its `done`.
//
// Thread-safe. Destroying it runs the writes still queued.
#ifndef UPLOADBROKER_TESTING_FAKE_LEDGER_H_
#define UPLOADBROKER_TESTING_FAKE_LEDGER_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ledger/ledger.h"

namespace uploadbroker::testing {

class FakeLedger final : public ledger::Ledger {
 public:
  // `clock` (not owned) stamps commits and leases; null means real time.
  explicit FakeLedger(const common::Clock* clock = nullptr)
      : clock_(clock != nullptr ? clock : &real_clock_),
        thread_([this] { Run(); }) {}

  ~FakeLedger() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  FakeLedger(const FakeLedger&) = delete;
  FakeLedger& operator=(const FakeLedger&) = delete;

  // --- test controls ---

  void SetHealthy(bool healthy) {
    absl::MutexLock lock(&mu_);
    healthy_ = healthy;
  }

  // Blocks until every write queued so far has been applied and its `done`
  // has returned.
  void WaitIdle() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &FakeLedger::IdleLocked));
  }

  // Number of intents stored (any state).
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return uploads_.size();
  }

  // --- ledger::Ledger ---

  using ledger::Ledger::CompleteUpload;  // the overload without a check

  void CreateIntent(ledger::Upload intent, std::function<void(absl::Status)> done) override {
    Enqueue([this, intent = std::move(intent), done = std::move(done)]() mutable {
      absl::Status st = ApplyCreate(std::move(intent));
      return [st, done = std::move(done)] { done(st); };
    });
  }

  void CompleteUpload(std::string upload_id, ledger::Completion completion,
                      ledger::CompletionCheck check,
                      std::function<void(absl::StatusOr<ledger::CompleteResult>)> done) override {
    Enqueue([this, id = std::move(upload_id), completion = std::move(completion),
             check = std::move(check), done = std::move(done)]() mutable {
      absl::StatusOr<ledger::CompleteResult> r = ApplyComplete(id, std::move(completion), check);
      return [r = std::move(r), done = std::move(done)] { done(r); };
    });
  }

  void ExpireUpload(std::string upload_id, v1::ExpiryReason reason,
                    std::function<void(absl::StatusOr<ledger::Event>)> done) override {
    Enqueue([this, id = std::move(upload_id), reason, done = std::move(done)]() mutable {
      absl::StatusOr<ledger::Event> r = ApplyExpire(id, reason);
      return [r = std::move(r), done = std::move(done)] { done(r); };
    });
  }

  absl::StatusOr<ledger::Upload> GetUpload(const std::string& upload_id) override {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(upload_id);
    if (it == index_.end()) return absl::NotFoundError(absl::StrCat("no upload ", upload_id));
    return uploads_.at(it->second);
  }

  absl::StatusOr<ledger::UploadPage> ListUploads(const ledger::UploadQuery& q) override {
    if (q.limit < 1 || q.limit > 1000) {
      return absl::InvalidArgumentError(absl::StrCat("page limit must be 1..1000, got ", q.limit));
    }
    absl::MutexLock lock(&mu_);
    ledger::UploadPage page;
    size_t bytes = 0;
    auto it = q.before_seq > 0 ? uploads_.lower_bound(q.before_seq) : uploads_.end();
    if (!q.before_upload_id.empty()) {
      auto at = index_.find(q.before_upload_id);
      if (at == index_.end()) return page;  // no such position: nothing before it
      it = uploads_.lower_bound(at->second);
    }
    while (it != uploads_.begin()) {
      --it;
      const ledger::Upload& u = it->second;
      if (!q.buckets.empty() &&
          std::find(q.buckets.begin(), q.buckets.end(), u.bucket()) == q.buckets.end()) {
        continue;
      }
      if (!q.callers.empty() &&
          std::find(q.callers.begin(), q.callers.end(), u.caller()) == q.callers.end()) {
        continue;
      }
      if (!absl::StartsWith(u.key(), q.key_prefix)) continue;
      if (!q.scope_prefixes.empty() &&
          std::none_of(q.scope_prefixes.begin(), q.scope_prefixes.end(),
                       [&u](const std::string& p) { return absl::StartsWith(u.key(), p); })) {
        continue;
      }
      if (q.state != v1::UPLOAD_STATE_UNSPECIFIED && u.state() != q.state) continue;
      if (static_cast<int>(page.uploads.size()) == q.limit) return page;  // there is more
      bytes += ledger::UploadBytes(u);
      if (q.max_bytes > 0 && !page.uploads.empty() && bytes > q.max_bytes) return page;
      page.uploads.push_back(u);
      page.next_before_seq = it->first;
    }
    page.next_before_seq = 0;
    return page;
  }

  absl::StatusOr<std::vector<ledger::Upload>> ClaimExpiredPending(absl::Time cutoff, int limit,
                                                                 absl::Duration lease) override {
    if (limit < 1) return absl::InvalidArgumentError("limit must be positive");
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&mu_);
    std::vector<std::pair<absl::Time, int64_t>> due;  // (expiry, seq)
    for (const auto& [seq, u] : uploads_) {
      if (u.state() != v1::UPLOAD_STATE_PENDING) continue;
      absl::Time expires = ToTime(u.expires_at());
      if (expires > cutoff) continue;
      auto claimed = claimed_until_.find(u.upload_id());
      if (claimed != claimed_until_.end() && claimed->second > now) continue;
      due.push_back({expires, seq});
    }
    std::sort(due.begin(), due.end());
    std::vector<ledger::Upload> out;
    for (const auto& [expires, seq] : due) {
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(uploads_.at(seq));
      claimed_until_[out.back().upload_id()] = now + lease;
    }
    return out;
  }

  absl::StatusOr<ledger::EventRecords> ReadEventRecords(uint64_t after, int limit,
                                                        size_t max_bytes) override {
    if (limit < 1) return absl::InvalidArgumentError("limit must be positive");
    absl::MutexLock lock(&mu_);
    ledger::EventRecords records;
    for (auto it = events_.upper_bound(after);
         it != events_.end() && static_cast<int>(records.entries.size()) < limit; ++it) {
      if (!records.entries.empty() && records.data.size() + it->second.size() > max_bytes) break;
      records.entries.push_back({it->first, records.data.size(), it->second.size()});
      records.data += it->second;
    }
    return records;
  }

  absl::StatusOr<uint64_t> LastCursor() override {
    absl::MutexLock lock(&mu_);
    return last_cursor_;
  }

  absl::StatusOr<uint64_t> FirstCursor() override {
    absl::MutexLock lock(&mu_);
    return events_.empty() ? 0 : events_.begin()->first;
  }

  int AddListener(std::function<void(uint64_t)> fn) override {
    absl::MutexLock lock(&mu_);
    listeners_[++next_listener_] = std::move(fn);
    return next_listener_;
  }

  void RemoveListener(int id) override {
    absl::MutexLock lock(&mu_);
    listeners_.erase(id);
  }

  absl::StatusOr<std::map<v1::UploadState, int64_t>> CountUploadsByState() override {
    absl::MutexLock lock(&mu_);
    std::map<v1::UploadState, int64_t> counts;
    for (const auto& [seq, u] : uploads_) ++counts[u.state()];
    return counts;
  }

  bool Healthy() override {
    absl::MutexLock lock(&mu_);
    return healthy_;
  }

 private:
  // A queued write: applies itself (on the fake's thread, without mu_) and
  // returns the acknowledgement to run afterwards.
  using Write = std::function<std::function<void()>()>;

  static absl::Time ToTime(const google::protobuf::Timestamp& ts) {
    return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  }
  static void SetTime(absl::Time t, google::protobuf::Timestamp* ts) {
    ts->set_seconds(absl::ToUnixSeconds(t));
    ts->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(ts->seconds())) /
                                       absl::Nanoseconds(1)));
  }

  void Enqueue(Write write) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(write));
  }

  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_.empty() && !busy_; }
  bool WorkOrStopLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || stopping_;
  }

  void Run() {
    for (;;) {
      Write write;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &FakeLedger::WorkOrStopLocked));
        if (queue_.empty()) return;  // stopping, nothing left
        write = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      std::function<void()> ack = write();
      ack();
      std::vector<std::function<void(uint64_t)>> listeners;
      uint64_t notify = 0;
      {
        absl::MutexLock lock(&mu_);
        if (last_cursor_ > notified_cursor_) {
          notify = notified_cursor_ = last_cursor_;
          for (const auto& [id, fn] : listeners_) listeners.push_back(fn);
        }
      }
      for (const auto& fn : listeners) fn(notify);
      absl::MutexLock lock(&mu_);
      busy_ = false;
    }
  }

  absl::Status Unavailable() const { return absl::UnavailableError("ledger unavailable (fake)"); }

  absl::Status ApplyCreate(ledger::Upload intent) {
    absl::MutexLock lock(&mu_);
    if (!healthy_) return Unavailable();
    if (intent.upload_id().empty()) return absl::InvalidArgumentError("intent has no upload_id");
    if (index_.count(intent.upload_id()) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("upload_id ", intent.upload_id(), " already exists"));
    }
    intent.set_state(v1::UPLOAD_STATE_PENDING);
    index_[intent.upload_id()] = ++last_seq_;
    uploads_[last_seq_] = std::move(intent);
    return absl::OkStatus();
  }

  absl::StatusOr<ledger::CompleteResult> ApplyComplete(const std::string& id,
                                                       ledger::Completion completion,
                                                       const ledger::CompletionCheck& check) {
    ledger::Upload stored;
    {
      absl::MutexLock lock(&mu_);
      if (!healthy_) return Unavailable();
      auto it = index_.find(id);
      if (it == index_.end()) return absl::NotFoundError(absl::StrCat("no upload ", id));
      stored = uploads_.at(it->second);
    }
    // The check runs without the lock: it is the caller's code. The fake's
    // one writer thread keeps the intent from changing meanwhile.
    if (check != nullptr) {
      absl::Status st = check(stored);
      if (!st.ok()) return st;
    }
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&mu_);
    ledger::Upload& upload = uploads_.at(index_.at(id));
    if (upload.state() == v1::UPLOAD_STATE_COMPLETED) {
      ledger::CompleteResult earlier;
      earlier.appended = false;
      earlier.event.ParseFromString(events_.at(completed_cursor_.at(id)));
      return earlier;
    }
    if (upload.state() == v1::UPLOAD_STATE_EXPIRED) {
      return absl::FailedPreconditionError(absl::StrCat("upload ", id, " has expired"));
    }
    SetTime(now, completion.mutable_completed_at());
    upload.set_state(v1::UPLOAD_STATE_COMPLETED);
    *upload.mutable_completion() = std::move(completion);
    ledger::CompleteResult result;
    result.appended = true;
    result.event.set_type(v1::EVENT_TYPE_UPLOAD_COMPLETED);
    SetTime(now, result.event.mutable_committed_at());
    *result.event.mutable_upload_completed()->mutable_upload() = upload;
    AppendLocked(result.event);
    completed_cursor_[id] = result.event.cursor();
    return result;
  }

  absl::StatusOr<ledger::Event> ApplyExpire(const std::string& id, v1::ExpiryReason reason) {
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&mu_);
    if (!healthy_) return Unavailable();
    auto it = index_.find(id);
    if (it == index_.end()) return absl::NotFoundError(absl::StrCat("no upload ", id));
    ledger::Upload& upload = uploads_.at(it->second);
    if (upload.state() != v1::UPLOAD_STATE_PENDING) {
      return absl::FailedPreconditionError(absl::StrCat(
          "upload ", id, " is ", v1::UploadState_Name(upload.state()), ", not PENDING"));
    }
    upload.set_state(v1::UPLOAD_STATE_EXPIRED);
    upload.set_expiry_reason(reason);
    ledger::Event event;
    event.set_type(v1::EVENT_TYPE_UPLOAD_EXPIRED);
    SetTime(now, event.mutable_committed_at());
    *event.mutable_upload_expired()->mutable_upload() = upload;
    AppendLocked(event);
    return event;
  }

  void AppendLocked(ledger::Event& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    event.set_cursor(++last_cursor_);
    events_[last_cursor_] = event.SerializeAsString();
  }

  common::RealClock real_clock_;
  const common::Clock* const clock_;

  mutable absl::Mutex mu_;
  bool healthy_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Write> queue_ ABSL_GUARDED_BY(mu_);
  // Intents by insertion order (ListUploads pages by it), and the index.
  std::map<int64_t, ledger::Upload> uploads_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> index_ ABSL_GUARDED_BY(mu_);
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, absl::Time> claimed_until_ ABSL_GUARDED_BY(mu_);
  // Event records by cursor, and each completed intent's event.
  std::map<uint64_t, std::string> events_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> completed_cursor_ ABSL_GUARDED_BY(mu_);
  uint64_t last_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t notified_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, std::function<void(uint64_t)>> listeners_ ABSL_GUARDED_BY(mu_);
  int next_listener_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // last: starts once everything above is constructed
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTING_FAKE_LEDGER_H_
