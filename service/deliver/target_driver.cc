#include "deliver/target_driver.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/encoding.h"
#include "common/log_safe.h"
#include "deliver/cloud_event.h"
#include "spdlog/spdlog.h"

namespace uploadbroker::deliver {

absl::Duration RetryDelay(int attempt, absl::Duration retry_after, double u) {
  absl::Duration d = kRetrySchedule.Delay(std::max(attempt, 1) - 1, u);
  return std::max(d, std::min(retry_after, kRetrySchedule.max));
}

ledger::SubscriptionKey TargetSubscriptionKey(const config::DeliveryTarget& target) {
  return ledger::SubscriptionKey{target.caller, absl::StrCat("target-", target.name)};
}

namespace {

// Worker threads running posted functions, now or after a delay (real time).
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Work(); });
  }
  ~Pool() { Stop(); }

  void Post(std::function<void()> fn) { PostAfter(absl::ZeroDuration(), std::move(fn)); }
  void PostAfter(absl::Duration d, std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    tasks_.emplace(absl::Now() + std::max(d, absl::ZeroDuration()), std::move(fn));
    cv_.Signal();
  }
  // Drops what has not started, waits for what runs.
  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stop_ && threads_.empty()) return;
      stop_ = true;
      tasks_.clear();
      cv_.SignalAll();
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Work() {
    absl::MutexLock lock(&mu_);
    for (;;) {
      if (stop_) return;
      if (tasks_.empty()) {
        cv_.Wait(&mu_);
        continue;
      }
      auto first = tasks_.begin();
      if (first->first > absl::Now()) {
        cv_.WaitWithDeadline(&mu_, first->first);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      tasks_.erase(first);
      mu_.Unlock();
      fn();
      mu_.Lock();
    }
  }

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::multimap<absl::Time, std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

std::string DefaultHolder() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  return absl::StrCat(host, "/", getpid(), "/", absl::Hex(rd(), absl::kZeroPad8));
}

double DefaultRandom() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

constexpr absl::Duration kShutdownSettle = absl::Seconds(3);

struct Queued {
  uint64_t cursor;
  int attempt;
  CloudEvent event;
};

}  // namespace

class TargetDriver::Impl : public std::enable_shared_from_this<Impl> {
 public:
  struct T {
    T(config::DeliveryTarget c, std::unique_ptr<Target> tg, stream::EventFilter f)
        : cfg(std::move(c)), target(std::move(tg)), filter(std::move(f)), key(TargetSubscriptionKey(cfg)) {}
    config::DeliveryTarget cfg;
    std::unique_ptr<Target> target;
    stream::EventFilter filter;
    ledger::SubscriptionKey key;

    absl::Mutex mu;
    bool scheduled ABSL_GUARDED_BY(mu) = false;
    bool running ABSL_GUARDED_BY(mu) = false;
    bool again ABSL_GUARDED_BY(mu) = false;
    bool created ABSL_GUARDED_BY(mu) = false;
    bool creating ABSL_GUARDED_BY(mu) = false;
    bool broken ABSL_GUARDED_BY(mu) = false;
    bool disabled ABSL_GUARDED_BY(mu) = false;
    bool stopped ABSL_GUARDED_BY(mu) = false;
    bool holding ABSL_GUARDED_BY(mu) = false;
    absl::Time holding_until ABSL_GUARDED_BY(mu) = absl::InfinitePast();
    bool scanned_known ABSL_GUARDED_BY(mu) = false;
    uint64_t scanned ABSL_GUARDED_BY(mu) = 0;
    bool leasing ABSL_GUARDED_BY(mu) = false;
    bool poll_due ABSL_GUARDED_BY(mu) = true;
    absl::Time retry_due ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
    absl::Time wake_at ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
    std::deque<Queued> queue ABSL_GUARDED_BY(mu);
    std::set<uint64_t> in_flight ABSL_GUARDED_BY(mu);
    int calls_in_flight ABSL_GUARDED_BY(mu) = 0;
    std::vector<uint64_t> acks ABSL_GUARDED_BY(mu);
    bool acking ABSL_GUARDED_BY(mu) = false;
    double latency_s ABSL_GUARDED_BY(mu) = 1.0;
    Stats stats ABSL_GUARDED_BY(mu);
  };

  Impl(ledger::Ledger& ledger, metrics::Registry& metrics, const common::Clock& clock,
       std::string source, DriverOptions options)
      : ledger_(ledger),
        clock_(clock),
        source_(std::move(source)),
        options_(std::move(options)),
        pool_(options_.threads),
        attempts_(metrics.AddCounter("upload_broker_target_attempts_total",
                                     "Push target delivery attempts, by result", {"target", "result"})),
        dead_(metrics.AddCounter("upload_broker_target_dead_letters_total",
                                 "Events a push target set aside as dead letters", {"target"})),
        lag_events_(metrics.AddGauge("upload_broker_target_lag_events",
                                     "Events after a push target's ack floor", {"target"})),
        lag_seconds_(metrics.AddGauge("upload_broker_target_lag_seconds",
                                      "Age of a push target's oldest unsettled event", {"target"})),
        last_success_(metrics.AddGauge("upload_broker_target_last_success_timestamp_seconds",
                                       "When a push target last took an event (Unix seconds)",
                                       {"target"})),
        driving_(metrics.AddGauge("upload_broker_target_driving",
                                  "1 while this broker drives the push target", {"target"})),
        disabled_(metrics.AddGauge("upload_broker_target_disabled",
                                   "1 once a push target answered 410 Gone (until restart)",
                                   {"target"})),
        log_limit_(5, &clock) {
    if (options_.holder.empty()) options_.holder = DefaultHolder();
    if (!options_.random) options_.random = &DefaultRandom;
  }

  void Start(std::vector<Driven> driven) {
    for (Driven& d : driven) {
      auto t = std::make_unique<T>(std::move(d.config), std::move(d.target), std::move(d.filter));
      {
        absl::MutexLock lock(&t->mu);
        t->latency_s = absl::ToDoubleSeconds(kRetrySchedule.initial);
      }
      driving_.Set({t->cfg.name}, 0);
      disabled_.Set({t->cfg.name}, 0);
      targets_.push_back(std::move(t));
    }
    auto last = ledger_.LastCursor();
    newest_ = last.ok() ? *last : 0;
    std::weak_ptr<Impl> weak = shared_from_this();
    listener_ = ledger_.AddListener([weak](uint64_t newest) {
      if (auto self = weak.lock()) self->OnAppended(newest);
    });
    for (auto& t : targets_) Kick(*t);
  }

  void Shutdown() {
    if (shut_.exchange(true)) return;
    ledger_.RemoveListener(listener_);
    for (auto& t : targets_) {
      absl::MutexLock lock(&t->mu);
      t->stopped = true;
    }
    // Let attempts under way finish and their acks reach the ledger (a
    // bounded wait), so that the next broker does not send them again.
    const absl::Time settle_by = absl::Now() + kShutdownSettle;
    for (auto& t : targets_) {
      absl::MutexLock lock(&t->mu);
      auto settled = [&t]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu) {
        return t->calls_in_flight == 0 && !t->acking && t->acks.empty();
      };
      t->mu.AwaitWithDeadline(absl::Condition(&settled), settle_by);
    }
    pool_.Stop();
    // No step runs now; destroying the targets stops their outcomes.
    std::vector<std::pair<T*, std::vector<uint64_t>>> hand_back;
    std::vector<T*> held;
    for (auto& t : targets_) {
      t->target.reset();
      absl::MutexLock lock(&t->mu);
      std::vector<uint64_t> cursors(t->in_flight.begin(), t->in_flight.end());
      for (const Queued& q : t->queue) cursors.push_back(q.cursor);
      t->queue.clear();
      if (!cursors.empty()) hand_back.emplace_back(t.get(), std::move(cursors));
      if (t->holding) held.push_back(t.get());
      driving_.Set({t->cfg.name}, 0);
    }
    auto left = std::make_shared<std::atomic<int>>(static_cast<int>(hand_back.size() + held.size()));
    auto all_done = std::make_shared<absl::Notification>();
    auto one_done = [left, all_done] {
      if (left->fetch_sub(1) == 1) all_done->Notify();
    };
    if (left->load() == 0) return;
    for (auto& [t, cursors] : hand_back) {
      ledger_.NackEvents(t->key, cursors, "not settled: the broker driving the target shut down",
                         absl::ZeroDuration(), [one_done](auto) { one_done(); });
    }
    for (T* t : held) {
      ledger_.ReleaseTarget(t->cfg.name, options_.holder, [one_done](absl::Status) { one_done(); });
    }
    all_done->WaitForNotificationWithTimeout(absl::Seconds(5));
  }

  void Poke() {
    for (auto& t : targets_) {
      {
        absl::MutexLock lock(&t->mu);
        t->poll_due = true;
      }
      Kick(*t);
    }
  }

  Stats StatsOf(const std::string& name) const {
    for (const auto& t : targets_) {
      if (t->cfg.name != name) continue;
      absl::MutexLock lock(&t->mu);
      Stats s = t->stats;
      s.driving = t->holding;
      s.disabled = t->disabled;
      return s;
    }
    return {};
  }

 private:
  void OnAppended(uint64_t newest) {
    uint64_t prev = newest_.load();
    while (newest > prev && !newest_.compare_exchange_weak(prev, newest)) {
    }
    for (auto& t : targets_) {
      bool wake;
      {
        absl::MutexLock lock(&t->mu);
        wake = t->holding && t->scanned < newest;
      }
      if (wake) Kick(*t);
    }
  }

  void Post(std::function<void()> fn) { pool_.Post(std::move(fn)); }

  void Kick(T& t) {
    {
      absl::MutexLock lock(&t.mu);
      if (t.running) {
        t.again = true;
        return;
      }
      if (t.scheduled) return;
      t.scheduled = true;
    }
    Post([self = shared_from_this(), &t] { self->Step(t); });
  }

  // Wakes `t` at `at` (ledger clock) unless an earlier wake is set.
  void WakeAt(T& t, absl::Time at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) {
    if (at >= t.wake_at) return;
    t.wake_at = at;
    pool_.PostAfter(at - clock_.Now(), [self = shared_from_this(), &t, at] {
      {
        absl::MutexLock lock(&t.mu);
        if (t.wake_at == at) t.wake_at = absl::InfiniteFuture();
      }
      self->Kick(t);
    });
  }

  void Step(T& t) {
    {
      absl::MutexLock lock(&t.mu);
      t.scheduled = false;
      t.running = true;
    }
    for (;;) {
      DoStep(t);
      absl::MutexLock lock(&t.mu);
      if (!t.again) {
        t.running = false;
        return;
      }
      t.again = false;
    }
  }

  void DoStep(T& t) {
    t.mu.Lock();
    if (t.stopped || t.broken || t.disabled) return t.mu.Unlock();
    if (!t.created) {
      if (!t.creating) {
        t.creating = true;
        t.mu.Unlock();
        return Create(t);
      }
      return t.mu.Unlock();
    }
    if (!t.holding || clock_.Now() >= t.holding_until) return t.mu.Unlock();
    if (!t.scanned_known) {
      t.mu.Unlock();
      absl::StatusOr<ledger::SubscriptionState> st = ledger_.GetSubscription(t.key);
      t.mu.Lock();
      if (!st.ok()) {
        LogLedgerError(t, "reading its subscription", st.status());
        WakeAt(t, clock_.Now() + absl::Seconds(1));
        return t.mu.Unlock();
      }
      t.scanned = st->scanned;
      t.scanned_known = true;
      t.poll_due = true;
    }
    // Start what the target has room for.
    std::vector<std::vector<Queued>> batches;
    const int max_batch = std::max(1, t.target->max_batch());
    while (t.calls_in_flight < t.target->max_in_flight() && !t.queue.empty()) {
      std::vector<Queued> batch;
      while (!t.queue.empty() && static_cast<int>(batch.size()) < max_batch) {
        batch.push_back(std::move(t.queue.front()));
        t.queue.pop_front();
      }
      for (const Queued& q : batch) t.in_flight.insert(q.cursor);
      ++t.calls_in_flight;
      batches.push_back(std::move(batch));
    }
    // Lease more when there is room and something may be there.
    const absl::Time now = clock_.Now();
    const int window = Window(t);
    const int room = window - static_cast<int>(t.queue.size() + t.in_flight.size());
    const uint64_t newest = newest_.load();
    const bool fresh = newest > t.scanned;
    const bool due = now >= t.retry_due || t.poll_due;
    // Lease in chunks, once the queue is down to half the window: each
    // lease is a ledger write (one per event would cap the rate at the
    // ledger's commit rate), and the other half covers its commit.
    const bool low = static_cast<int>(t.queue.size()) <= window / 2;
    bool lease = room > 0 && low && !t.leasing && (fresh || due);
    uint64_t after = t.scanned;
    if (lease) {
      t.leasing = true;
      t.poll_due = false;
      if (now >= t.retry_due) t.retry_due = absl::InfiniteFuture();
    }
    if (t.retry_due != absl::InfiniteFuture()) WakeAt(t, t.retry_due);
    t.mu.Unlock();

    for (auto& batch : batches) StartBatch(t, std::move(batch));
    if (lease) Lease(t, after, fresh, room);
  }

  // How many events to lease ahead: as many as the target gets through in
  // a quarter of the ack deadline at its recent pace, so none waits in the
  // queue until its lease runs out.
  int Window(T& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu) {
    const int per_call = std::max(1, t.target->max_batch()) * std::max(1, t.target->max_in_flight());
    const double pace = absl::ToDoubleSeconds(t.cfg.ack_deadline) / 4 / std::max(t.latency_s, 1e-4);
    const int window = static_cast<int>(std::min<double>(pace * per_call, options_.max_window));
    return std::max(per_call, window);
  }

  void Create(T& t) {
    ledger::SubscriptionSpec spec;
    spec.key = t.key;
    v1::EventFilter* f = &spec.filter;
    for (const auto& b : t.cfg.filter.buckets) f->add_buckets(b);
    for (const auto& p : t.cfg.filter.key_prefixes) f->add_key_prefixes(p);
    for (const auto& [k, v] : t.cfg.filter.metadata) (*f->mutable_metadata())[k] = v;
    for (const auto& c : t.cfg.filter.callers) f->add_callers(c);
    for (const auto& ty : t.cfg.filter.types) {
      f->add_types(ty == "completed" ? v1::EVENT_TYPE_UPLOAD_COMPLETED : v1::EVENT_TYPE_UPLOAD_EXPIRED);
    }
    auto last = ledger_.LastCursor();
    spec.start_after = last.ok() ? *last : 0;
    spec.ack_deadline = t.cfg.ack_deadline;
    spec.max_delivery_attempts = static_cast<int>(t.cfg.max_delivery_attempts);
    spec.target = t.cfg.name;
    ledger_.CreateSubscription(spec, [self = shared_from_this(), &t](
                                         absl::StatusOr<ledger::SubscriptionState> st) {
      self->Post([self, &t, st = std::move(st)] { self->OnCreated(t, st); });
    });
  }

  void OnCreated(T& t, const absl::StatusOr<ledger::SubscriptionState>& st) {
    {
      absl::MutexLock lock(&t.mu);
      t.creating = false;
      if (st.ok()) {
        t.created = true;
      } else if (st.status().code() == absl::StatusCode::kAlreadyExists ||
                 st.status().code() == absl::StatusCode::kUnimplemented ||
                 st.status().code() == absl::StatusCode::kResourceExhausted) {
        t.broken = true;
        spdlog::error("push target '{}' is NOT delivering: its subscription '{}' of caller '{}' "
                      "cannot be used: {} (delete the subscription to apply new settings)",
                      t.cfg.name, t.key.name, t.key.caller, common::LogSafeStatus(st.status()));
        return;
      } else {
        LogLedgerError(t, "creating its subscription", st.status());
        WakeAt(t, clock_.Now() + absl::Seconds(1));
        return;
      }
    }
    Claim(t);
  }

  void Claim(T& t) {
    {
      absl::MutexLock lock(&t.mu);
      if (t.stopped || t.broken) return;
    }
    const absl::Time asked = clock_.Now();
    ledger_.ClaimTarget(t.cfg.name, options_.holder, options_.claim_lease,
                        [self = shared_from_this(), &t, asked](absl::StatusOr<bool> r) {
                          self->Post([self, &t, asked, r = std::move(r)] { self->OnClaim(t, asked, r); });
                        });
  }

  void OnClaim(T& t, absl::Time asked, const absl::StatusOr<bool>& r) {
    bool kick = false;
    bool refresh = false;
    std::vector<uint64_t> hand_back;
    {
      absl::MutexLock lock(&t.mu);
      if (t.stopped) return;
      if (!r.ok()) {
        LogLedgerError(t, "renewing its lease", r.status());
      } else if (*r) {
        if (!t.holding) {
          spdlog::info("push target '{}': this broker ({}) drives it now", t.cfg.name, options_.holder);
          t.scanned_known = false;
          driving_.Set({t.cfg.name}, 1);
        }
        t.holding = true;
        // A margin for the ledger's and this broker's clocks.
        t.holding_until = asked + options_.claim_lease - absl::Seconds(1);
        kick = true;
        refresh = true;
      } else if (t.holding) {
        spdlog::warn("push target '{}': another broker drives it now", t.cfg.name);
        t.holding = false;
        driving_.Set({t.cfg.name}, 0);
        for (const Queued& q : t.queue) hand_back.push_back(q.cursor);
        t.queue.clear();
      }
    }
    if (!hand_back.empty()) {
      ledger_.NackEvents(t.key, hand_back, "not attempted: another broker drives the target",
                         absl::ZeroDuration(), [](auto) {});
    }
    pool_.PostAfter(options_.claim_poll, [self = shared_from_this(), &t] { self->Claim(t); });
    if (refresh) Refresh(t);
    if (kick) Kick(t);
  }

  // Lag metrics, and whether rows above the floor may need a look (expired
  // leases, retries this broker did not schedule).
  void Refresh(T& t) {
    absl::StatusOr<ledger::SubscriptionState> st = ledger_.GetSubscription(t.key);
    if (!st.ok()) return;
    const uint64_t newest = std::max<uint64_t>(newest_.load(), st->scanned);
    const uint64_t lag = newest > st->ack_floor ? newest - st->ack_floor : 0;
    lag_events_.Set({t.cfg.name}, static_cast<double>(lag));
    double lag_s = 0;
    if (lag > 0) {
      auto oldest = ledger_.ReadEvents(st->ack_floor, 1);
      if (oldest.ok() && !oldest->empty()) {
        const auto& ts = (*oldest)[0].committed_at();
        absl::Time at = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
        lag_s = std::max(0.0, absl::ToDoubleSeconds(clock_.Now() - at));
      }
    }
    lag_seconds_.Set({t.cfg.name}, lag_s);
    if (st->ack_floor < st->scanned) {
      absl::MutexLock lock(&t.mu);
      if (t.queue.empty() && t.in_flight.empty()) t.poll_due = true;
    }
  }

  void Lease(T& t, uint64_t after, bool fresh, int room) {
    std::vector<uint64_t> candidates;
    auto cache = std::make_shared<std::map<uint64_t, v1::Event>>();
    uint64_t through = after;
    if (fresh) {
      // Read about what can be leased (more when the filter skips some).
      const int limit = std::min(options_.read_batch, std::max(room * 2, 32));
      absl::StatusOr<std::vector<v1::Event>> events = ledger_.ReadEvents(after, limit);
      if (!events.ok()) {
        absl::MutexLock lock(&t.mu);
        t.leasing = false;
        LogLedgerError(t, "reading the log", events.status());
        WakeAt(t, clock_.Now() + absl::Seconds(1));
        return;
      }
      for (v1::Event& e : *events) {
        through = e.cursor();
        if (t.filter.Matches(e)) {
          candidates.push_back(e.cursor());
          cache->emplace(e.cursor(), std::move(e));
        }
      }
    }
    ledger_.LeaseEvents(
        t.key, options_.holder, candidates, through, room,
        [self = shared_from_this(), &t, candidates, through, cache,
         room](absl::StatusOr<std::vector<ledger::Lease>> leases) {
          self->Post([self, &t, candidates, through, cache, room, leases = std::move(leases)] {
            self->OnLeased(t, leases, candidates, through, *cache, room);
          });
        });
  }

  void OnLeased(T& t, const absl::StatusOr<std::vector<ledger::Lease>>& leases,
                const std::vector<uint64_t>& candidates, uint64_t through,
                std::map<uint64_t, v1::Event>& cache, int room) {
    if (!leases.ok()) {
      absl::MutexLock lock(&t.mu);
      t.leasing = false;
      LogLedgerError(t, "leasing events", leases.status());
      WakeAt(t, clock_.Now() + absl::Seconds(1));
      return;
    }
    // Where LeaseEvents left `scanned` (ledger.h): through, or just below
    // the first candidate `room` left out.
    uint64_t scanned = through;
    if (static_cast<int>(leases->size()) >= room) {
      std::set<uint64_t> got;
      for (const ledger::Lease& l : *leases) got.insert(l.cursor);
      for (uint64_t c : candidates) {
        if (got.count(c) == 0) {
          scanned = c - 1;
          break;
        }
      }
    }
    std::vector<Queued> ready;
    std::vector<uint64_t> unreadable;
    for (const ledger::Lease& l : *leases) {
      auto it = cache.find(l.cursor);
      v1::Event event;
      if (it != cache.end()) {
        event = std::move(it->second);
      } else {
        auto read = ledger_.ReadEvents(l.cursor - 1, 1);
        if (!read.ok() || read->empty() || (*read)[0].cursor() != l.cursor) {
          unreadable.push_back(l.cursor);
          continue;
        }
        event = std::move((*read)[0]);
      }
      absl::StatusOr<CloudEvent> ce = ToCloudEvent(event, source_);
      if (!ce.ok()) {
        unreadable.push_back(l.cursor);
        continue;
      }
      ready.push_back(Queued{l.cursor, l.attempt, *std::move(ce)});
    }
    {
      absl::MutexLock lock(&t.mu);
      t.leasing = false;
      t.scanned = std::max(t.scanned, scanned);
      for (Queued& q : ready) t.queue.push_back(std::move(q));
    }
    if (!unreadable.empty()) {
      Nack(t, unreadable, "the event could not be read or converted", absl::Minutes(1), 1);
    }
    Kick(t);
  }

  void StartBatch(T& t, std::vector<Queued> batch) {
    std::vector<CloudEvent> events;
    std::vector<std::pair<uint64_t, int>> ids;
    for (Queued& q : batch) {
      ids.emplace_back(q.cursor, q.attempt);
      events.push_back(std::move(q.event));
    }
    const absl::Time started = absl::Now();
    Target* target;
    {
      absl::MutexLock lock(&t.mu);
      target = t.target.get();
    }
    if (target == nullptr) return;
    target->Deliver(std::move(events), [self = shared_from_this(), &t, ids = std::move(ids),
                                        started](AttemptOutcome o) {
      self->Post([self, &t, ids, started, o = std::move(o)] { self->OnOutcome(t, ids, started, o); });
    });
  }

  void OnOutcome(T& t, const std::vector<std::pair<uint64_t, int>>& ids, absl::Time started,
                 const AttemptOutcome& o) {
    const std::string& name = t.cfg.name;
    std::vector<uint64_t> cursors;
    int attempt = 0;
    for (const auto& [c, a] : ids) {
      cursors.push_back(c);
      attempt = std::max(attempt, a);
    }
    bool flush = false;
    std::vector<uint64_t> not_attempted;
    {
      absl::MutexLock lock(&t.mu);
      for (uint64_t c : cursors) t.in_flight.erase(c);
      --t.calls_in_flight;
      const double took = absl::ToDoubleSeconds(absl::Now() - started);
      t.latency_s = 0.8 * t.latency_s + 0.2 * took;
      switch (o.kind) {
        case AttemptOutcome::kDelivered:
          t.stats.delivered += static_cast<int64_t>(cursors.size());
          t.acks.insert(t.acks.end(), cursors.begin(), cursors.end());
          flush = true;
          break;
        case AttemptOutcome::kFailed:
          t.stats.failed += static_cast<int64_t>(cursors.size());
          break;
        case AttemptOutcome::kGone:
          t.stats.failed += static_cast<int64_t>(cursors.size());
          if (!t.disabled) {
            t.disabled = true;
            for (const Queued& q : t.queue) not_attempted.push_back(q.cursor);
            t.queue.clear();
          }
          break;
      }
    }
    switch (o.kind) {
      case AttemptOutcome::kDelivered:
        attempts_.Inc({name, "delivered"});
        last_success_.Set({name}, absl::ToDoubleSeconds(clock_.Now() - absl::UnixEpoch()));
        break;
      case AttemptOutcome::kFailed: {
        attempts_.Inc({name, "failed"});
        const absl::Duration delay = RetryDelay(attempt, o.retry_after, options_.random());
        uint64_t suppressed = 0;
        if (log_limit_.Admit(&suppressed)) {
          spdlog::warn("push target '{}': attempt {} of {} for event {} failed: {}; {} ({} more "
                       "failures not logged)",
                       name, attempt, t.cfg.max_delivery_attempts, cursors.front(),
                       common::LogSafe(o.reason),
                       attempt >= t.cfg.max_delivery_attempts
                           ? std::string("it is a dead letter now")
                           : absl::StrCat("next attempt in ", absl::FormatDuration(delay)),
                       suppressed);
        }
        Nack(t, cursors, o.reason, delay, attempt);
        break;
      }
      case AttemptOutcome::kGone:
        attempts_.Inc({name, "gone"});
        disabled_.Set({name}, 1);
        spdlog::error("!!! push target '{}' ({}) answered 410 Gone: it is DISABLED on this broker "
                      "until the broker restarts; its events wait in subscription '{}' of caller "
                      "'{}' (remove the target from deliveries.targets, or fix the receiver and "
                      "restart) !!!",
                      name, common::LogSafe(t.cfg.webhook.url), t.key.name, t.key.caller);
        Nack(t, cursors, o.reason, absl::ZeroDuration(), attempt);
        if (!not_attempted.empty()) {
          ledger_.NackEvents(t.key, not_attempted, "not attempted: the target answered 410 Gone",
                             absl::ZeroDuration(), [](auto) {});
        }
        break;
    }
    if (flush) FlushAcks(t);
    Kick(t);
  }

  void Nack(T& t, const std::vector<uint64_t>& cursors, const std::string& reason,
            absl::Duration delay, int attempt) {
    if (attempt >= t.cfg.max_delivery_attempts) {
      dead_.Inc({t.cfg.name}, cursors.size());
      absl::MutexLock lock(&t.mu);
      t.stats.dead += static_cast<int64_t>(cursors.size());
    }
    {
      absl::MutexLock lock(&t.mu);
      t.retry_due = std::min(t.retry_due, clock_.Now() + delay);
    }
    ledger_.NackEvents(t.key, cursors, reason.substr(0, 512), delay,
                       [self = shared_from_this(), &t](absl::StatusOr<ledger::AckResult> r) {
                         if (!r.ok()) {
                           self->Post([self, &t, s = r.status()] {
                             absl::MutexLock lock(&t.mu);
                             self->LogLedgerError(t, "recording a failed attempt", s);
                           });
                         } else {
                           self->Post([self, &t] { self->Kick(t); });
                         }
                       });
  }

  void FlushAcks(T& t) {
    std::vector<uint64_t> acks;
    {
      absl::MutexLock lock(&t.mu);
      if (t.acking || t.acks.empty()) return;
      t.acking = true;
      acks.swap(t.acks);
    }
    ledger_.AckEvents(t.key, acks, [self = shared_from_this(), &t, acks](absl::StatusOr<ledger::AckResult> r) {
      self->Post([self, &t, acks, r = std::move(r)] {
        {
          absl::MutexLock lock(&t.mu);
          t.acking = false;
          if (!r.ok()) {
            self->LogLedgerError(t, "acknowledging events", r.status());
            t.acks.insert(t.acks.end(), acks.begin(), acks.end());
          } else {
            const uint64_t newest = self->newest_.load();
            self->lag_events_.Set({t.cfg.name}, newest > r->ack_floor
                                                    ? static_cast<double>(newest - r->ack_floor)
                                                    : 0.0);
            self->last_success_.Set({t.cfg.name},
                                    absl::ToDoubleSeconds(self->clock_.Now() - absl::UnixEpoch()));
          }
        }
        if (!r.ok()) {
          self->pool_.PostAfter(absl::Milliseconds(500), [self, &t] { self->FlushAcks(t); });
        } else {
          self->FlushAcks(t);
        }
      });
    });
  }

  void LogLedgerError(T& t, const char* what, const absl::Status& s) {
    uint64_t suppressed = 0;
    if (!log_limit_.Admit(&suppressed)) return;
    spdlog::warn("push target '{}': {} failed: {} ({} more not logged)", t.cfg.name, what,
                 common::LogSafeStatus(s), suppressed);
  }

  ledger::Ledger& ledger_;
  const common::Clock& clock_;
  const std::string source_;
  DriverOptions options_;
  Pool pool_;
  metrics::Counter& attempts_;
  metrics::Counter& dead_;
  metrics::Gauge& lag_events_;
  metrics::Gauge& lag_seconds_;
  metrics::Gauge& last_success_;
  metrics::Gauge& driving_;
  metrics::Gauge& disabled_;
  common::LogRateLimiter log_limit_;
  std::vector<std::unique_ptr<T>> targets_;
  std::atomic<uint64_t> newest_{0};
  int listener_ = -1;
  std::atomic<bool> shut_{false};
};

TargetDriver::TargetDriver(ledger::Ledger& ledger, metrics::Registry& metrics,
                           const common::Clock& clock, std::string source,
                           std::vector<Driven> targets, DriverOptions options)
    : impl_(std::make_shared<Impl>(ledger, metrics, clock, std::move(source), std::move(options))) {
  impl_->Start(std::move(targets));
}

TargetDriver::~TargetDriver() { Shutdown(); }
void TargetDriver::Shutdown() { impl_->Shutdown(); }
void TargetDriver::Poke() { impl_->Poke(); }
TargetDriver::Stats TargetDriver::StatsOf(const std::string& target) const {
  return impl_->StatsOf(target);
}

}  // namespace uploadbroker::deliver
