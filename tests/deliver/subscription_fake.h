// SubscriptionFake: a Ledger for target driver tests: the log and intents
// of testing::FakeLedger, plus the durable-subscription methods of
// ledger.h kept in memory with the contract's semantics (subscriptions.h),
// against an injected clock. Subscription calls run `done` on the calling
// thread. Thread-safe.
#ifndef UPLOADBROKER_TESTS_DELIVER_SUBSCRIPTION_FAKE_H_
#define UPLOADBROKER_TESTS_DELIVER_SUBSCRIPTION_FAKE_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "ledger/ledger.h"
#include "tests/testing/fake_ledger.h"

namespace uploadbroker::testing {

class SubscriptionFake final : public ledger::Ledger {
 public:
  explicit SubscriptionFake(const common::Clock* clock) : clock_(clock), log_(clock) {}

  FakeLedger& log() { return log_; }

  // --- the log: FakeLedger's ---
  void CreateIntent(ledger::Upload i, std::function<void(absl::Status)> d) override {
    log_.CreateIntent(std::move(i), std::move(d));
  }
  void CompleteUpload(std::string id, ledger::Completion c, ledger::CompletionCheck k,
                      std::function<void(absl::StatusOr<ledger::CompleteResult>)> d) override {
    log_.CompleteUpload(std::move(id), std::move(c), std::move(k), std::move(d));
  }
  void ExpireUpload(std::string id, v1::ExpiryReason r,
                    std::function<void(absl::StatusOr<ledger::Event>)> d) override {
    log_.ExpireUpload(std::move(id), r, std::move(d));
  }
  absl::StatusOr<ledger::Upload> GetUpload(const std::string& id) override { return log_.GetUpload(id); }
  absl::StatusOr<ledger::UploadPage> ListUploads(const ledger::UploadQuery& q) override {
    return log_.ListUploads(q);
  }
  absl::StatusOr<std::vector<ledger::Upload>> ClaimExpiredPending(absl::Time c, int l,
                                                                  absl::Duration d) override {
    return log_.ClaimExpiredPending(c, l, d);
  }
  absl::StatusOr<ledger::EventRecords> ReadEventRecords(uint64_t a, int l, size_t m) override {
    return log_.ReadEventRecords(a, l, m);
  }
  absl::StatusOr<uint64_t> LastCursor() override { return log_.LastCursor(); }
  absl::StatusOr<uint64_t> FirstCursor() override { return log_.FirstCursor(); }
  int AddListener(std::function<void(uint64_t)> fn) override { return log_.AddListener(std::move(fn)); }
  void RemoveListener(int id) override { log_.RemoveListener(id); }
  absl::StatusOr<std::map<v1::UploadState, int64_t>> CountUploadsByState() override {
    return log_.CountUploadsByState();
  }
  bool Healthy() override { return log_.Healthy(); }

  // --- subscriptions ---
  struct Row {
    enum State { kLeased, kWaiting, kAcked, kDead } state = kLeased;
    int attempts = 0;
    std::string holder;
    absl::Time lease_until;
    absl::Time available_at;
    std::vector<ledger::FailedAttempt> failures;
  };

  void CreateSubscription(ledger::SubscriptionSpec spec,
                          std::function<void(absl::StatusOr<ledger::SubscriptionState>)> done) override {
    absl::StatusOr<ledger::SubscriptionState> r;
    {
      absl::MutexLock lock(&mu_);
      auto it = subs_.find(Key(spec.key));
      if (it != subs_.end()) {
        const ledger::SubscriptionSpec& old = it->second.state.spec;
        if (old.target != spec.target || old.ack_deadline != spec.ack_deadline ||
            old.max_delivery_attempts != spec.max_delivery_attempts ||
            old.filter.SerializeAsString() != spec.filter.SerializeAsString()) {
          r = absl::AlreadyExistsError("subscription exists with other settings");
        } else {
          r = it->second.state;
        }
      } else {
        Sub s;
        s.state.spec = spec;
        s.state.created_at = clock_->Now();
        s.state.ack_floor = s.state.scanned = spec.start_after;
        subs_[Key(spec.key)] = s;
        r = s.state;
      }
    }
    done(r);
  }
  void DeleteSubscription(ledger::SubscriptionKey key, std::function<void(absl::Status)> done) override {
    absl::Status st;
    {
      absl::MutexLock lock(&mu_);
      st = subs_.erase(Key(key)) ? absl::OkStatus() : absl::NotFoundError("no such subscription");
    }
    done(st);
  }
  absl::StatusOr<ledger::SubscriptionState> GetSubscription(const ledger::SubscriptionKey& key) override {
    absl::MutexLock lock(&mu_);
    Sub* s = Find(key);
    if (s == nullptr) return absl::NotFoundError("no such subscription");
    return StateOf(*s);
  }
  absl::StatusOr<std::vector<ledger::SubscriptionState>> ListSubscriptions(const std::string& caller) override {
    absl::MutexLock lock(&mu_);
    std::vector<ledger::SubscriptionState> out;
    for (auto& [k, s] : subs_) {
      if (caller.empty() || s.state.spec.key.caller == caller) out.push_back(StateOf(s));
    }
    return out;
  }
  void LeaseEvents(ledger::SubscriptionKey key, std::string holder, std::vector<uint64_t> candidates,
                   uint64_t through, int max,
                   std::function<void(absl::StatusOr<std::vector<ledger::Lease>>)> done) override {
    absl::StatusOr<std::vector<ledger::Lease>> r;
    {
      absl::MutexLock lock(&mu_);
      ++lease_calls_;
      Sub* s = Find(key);
      if (s == nullptr) {
        r = absl::NotFoundError("no such subscription");
      } else {
        const absl::Time now = clock_->Now();
        const auto& spec = s->state.spec;
        std::vector<ledger::Lease> out;
        for (auto& [c, row] : s->rows) {
          if (static_cast<int>(out.size()) >= max) break;
          bool expired = row.state == Row::kLeased && row.lease_until <= now;
          bool due = row.state == Row::kWaiting && row.available_at <= now;
          if (!expired && !due) continue;
          if (expired) row.failures.push_back({now, "deadline passed"});
          if (row.attempts >= spec.max_delivery_attempts) {
            row.state = Row::kDead;
            continue;
          }
          Lease(row, holder, now + spec.ack_deadline);
          out.push_back({c, row.attempts, row.lease_until});
        }
        uint64_t scanned = through;
        for (uint64_t c : candidates) {
          if (c <= s->state.scanned) continue;
          if (static_cast<int>(out.size()) >= max) {
            scanned = c - 1;
            break;
          }
          Row& row = s->rows[c];
          Lease(row, holder, now + spec.ack_deadline);
          out.push_back({c, row.attempts, row.lease_until});
        }
        s->state.scanned = std::max(s->state.scanned, scanned);
        Advance(*s);
        r = out;
      }
    }
    done(r);
  }
  void AckEvents(ledger::SubscriptionKey key, std::vector<uint64_t> cursors,
                 std::function<void(absl::StatusOr<ledger::AckResult>)> done) override {
    absl::StatusOr<ledger::AckResult> r;
    {
      absl::MutexLock lock(&mu_);
      Sub* s = Find(key);
      if (s == nullptr) {
        r = absl::NotFoundError("no such subscription");
      } else {
        ledger::AckResult a;
        for (uint64_t c : cursors) {
          auto it = s->rows.find(c);
          if (it == s->rows.end()) {
            if (c > s->state.ack_floor) a.unknown.push_back(c);
            continue;
          }
          if (it->second.state != Row::kDead) {
            it->second.state = Row::kAcked;
            ++acks_[Key(key)][c];
          }
        }
        Advance(*s);
        a.ack_floor = s->state.ack_floor;
        r = a;
      }
    }
    done(r);
  }
  void NackEvents(ledger::SubscriptionKey key, std::vector<uint64_t> cursors, std::string reason,
                  absl::Duration retry_after,
                  std::function<void(absl::StatusOr<ledger::AckResult>)> done) override {
    absl::StatusOr<ledger::AckResult> r;
    {
      absl::MutexLock lock(&mu_);
      Sub* s = Find(key);
      if (s == nullptr) {
        r = absl::NotFoundError("no such subscription");
      } else {
        const absl::Time now = clock_->Now();
        ledger::AckResult a;
        for (uint64_t c : cursors) {
          auto it = s->rows.find(c);
          if (it == s->rows.end()) {
            a.unknown.push_back(c);
            continue;
          }
          Row& row = it->second;
          if (row.state == Row::kAcked || row.state == Row::kDead) continue;
          row.failures.push_back({now, reason});
          nacks_.push_back({c, row.attempts, retry_after, reason});
          if (row.attempts >= s->state.spec.max_delivery_attempts) {
            row.state = Row::kDead;
          } else {
            row.state = Row::kWaiting;
            row.available_at = now + retry_after;
          }
        }
        Advance(*s);
        a.ack_floor = s->state.ack_floor;
        r = a;
      }
    }
    done(r);
  }
  void ExtendLeases(ledger::SubscriptionKey, std::string, std::vector<uint64_t> cursors, absl::Duration,
                    std::function<void(absl::StatusOr<std::vector<uint64_t>>)> done) override {
    done(cursors);
  }
  absl::StatusOr<std::vector<ledger::DeadLetter>> ListDeadLetters(const ledger::SubscriptionKey& key,
                                                                  uint64_t after, int limit) override {
    absl::MutexLock lock(&mu_);
    Sub* s = Find(key);
    if (s == nullptr) return absl::NotFoundError("no such subscription");
    std::vector<ledger::DeadLetter> out;
    for (auto& [c, row] : s->rows) {
      if (c <= after || row.state != Row::kDead) continue;
      if (static_cast<int>(out.size()) >= limit) break;
      out.push_back({c, row.failures.empty() ? absl::Time() : row.failures.back().at, row.failures});
    }
    return out;
  }
  void RedriveDeadLetters(ledger::SubscriptionKey, std::vector<uint64_t>,
                          std::function<void(absl::StatusOr<int64_t>)> done) override {
    done(absl::UnimplementedError("not in the fake"));
  }
  void ClaimTarget(std::string name, std::string holder, absl::Duration lease,
                   std::function<void(absl::StatusOr<bool>)> done) override {
    bool held;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time now = clock_->Now();
      auto& c = claims_[name];
      if (c.first.empty() || c.first == holder || c.second <= now) {
        c = {holder, now + lease};
        held = true;
      } else {
        held = false;
      }
    }
    done(held);
  }
  void ReleaseTarget(std::string name, std::string holder, std::function<void(absl::Status)> done) override {
    {
      absl::MutexLock lock(&mu_);
      auto it = claims_.find(name);
      if (it != claims_.end() && it->second.first == holder) claims_.erase(it);
    }
    done(absl::OkStatus());
  }

  // Test views.
  struct Nack {
    uint64_t cursor;
    int attempt;
    absl::Duration retry_after;
    std::string reason;
  };
  std::vector<Nack> nacks() {
    absl::MutexLock lock(&mu_);
    return nacks_;
  }
  std::map<uint64_t, int> acks(const ledger::SubscriptionKey& key) {
    absl::MutexLock lock(&mu_);
    return acks_[Key(key)];
  }
  int lease_calls() {
    absl::MutexLock lock(&mu_);
    return lease_calls_;
  }

 private:
  struct Sub {
    ledger::SubscriptionState state;
    std::map<uint64_t, Row> rows;
  };
  static std::string Key(const ledger::SubscriptionKey& k) { return k.caller + "\n" + k.name; }
  Sub* Find(const ledger::SubscriptionKey& k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = subs_.find(Key(k));
    return it == subs_.end() ? nullptr : &it->second;
  }
  static void Lease(Row& row, const std::string& holder, absl::Time until) {
    ++row.attempts;
    row.state = Row::kLeased;
    row.holder = holder;
    row.lease_until = until;
  }
  static void Advance(Sub& s) {
    while (s.state.ack_floor < s.state.scanned) {
      auto it = s.rows.find(s.state.ack_floor + 1);
      if (it != s.rows.end()) {
        if (it->second.state == Row::kAcked) {
          s.rows.erase(it);
        } else if (it->second.state != Row::kDead) {
          break;
        }
      }
      ++s.state.ack_floor;
    }
  }
  ledger::SubscriptionState StateOf(const Sub& s) const {
    ledger::SubscriptionState st = s.state;
    st.leased = st.dead = st.acked_above_floor = 0;
    for (const auto& [c, row] : s.rows) {
      st.leased += row.state == Row::kLeased;
      st.dead += row.state == Row::kDead;
      st.acked_above_floor += row.state == Row::kAcked;
    }
    return st;
  }

  const common::Clock* clock_;
  FakeLedger log_;
  absl::Mutex mu_;
  std::map<std::string, Sub> subs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<std::string, absl::Time>> claims_ ABSL_GUARDED_BY(mu_);
  std::vector<Nack> nacks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<uint64_t, int>> acks_ ABSL_GUARDED_BY(mu_);
  int lease_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace uploadbroker::testing

#endif  // UPLOADBROKER_TESTS_DELIVER_SUBSCRIPTION_FAKE_H_
