#include "deliver/consume_dispatcher.h"

#include <algorithm>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "deliver/consume_session.h"
#include "metrics/registry.h"

namespace uploadbroker::deliver {
namespace {

class Rejected final : public ConsumeDispatcher::Reactor {
 public:
  explicit Rejected(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// Per-subscription gauges read at scrape time.
std::vector<std::pair<metrics::LabelValues, double>> SubscriptionGauge(
    const std::shared_ptr<std::atomic<ledger::Ledger*>>& holder, bool lag) {
  std::vector<std::pair<metrics::LabelValues, double>> out;
  ledger::Ledger* ledger = holder->load();
  if (ledger == nullptr) return out;
  absl::StatusOr<std::vector<ledger::SubscriptionState>> all = ledger->ListSubscriptions("");
  if (!all.ok()) return out;
  uint64_t newest = 0;
  if (lag) {
    absl::StatusOr<uint64_t> last = ledger->LastCursor();
    if (!last.ok()) return out;
    newest = *last;
  }
  for (const ledger::SubscriptionState& s : *all) {
    const double value =
        lag ? static_cast<double>(newest > s.ack_floor ? newest - s.ack_floor : 0)
            : static_cast<double>(s.dead);
    out.emplace_back(metrics::LabelValues{s.spec.key.caller, s.spec.key.name}, value);
  }
  return out;
}

}  // namespace

std::string ConsumeDispatcher::NoSubscription(const std::string& name) {
  return absl::StrCat("subscription: no subscription '", name, "' of this caller");
}

ConsumeDispatcher::ConsumeDispatcher(ledger::Ledger& ledger, metrics::Registry* metrics,
                                     Options options)
    : ledger_(ledger),
      options_(std::move(options)),
      broker_id_(options_.broker_id.empty() ? common::RandomHex(8) : options_.broker_id),
      pool_(std::make_unique<boost::asio::thread_pool>(
          static_cast<size_t>(std::max(1, options_.threads)))),
      gauge_ledger_(std::make_shared<std::atomic<ledger::Ledger*>>(&ledger)) {
  if (metrics != nullptr) {
    const std::vector<std::string> labels = {"caller", "subscription"};
    deliveries_ = &metrics->AddCounter("upload_broker_consume_deliveries_total",
                                       "Events sent to Consume streams (redeliveries included)",
                                       labels);
    acks_ = &metrics->AddCounter("upload_broker_consume_acks_total",
                                 "Events acknowledged on Consume streams", labels);
    nacks_ = &metrics->AddCounter("upload_broker_consume_nacks_total",
                                  "Events refused (nacked) on Consume streams", labels);
    metrics->AddGaugeFn("upload_broker_subscription_dead_letters",
                        "Dead letters held per subscription", labels,
                        [g = gauge_ledger_] { return SubscriptionGauge(g, /*lag=*/false); });
    metrics->AddGaugeFn("upload_broker_subscription_lag_events",
                        "Newest cursor of the log minus the subscription's ack floor", labels,
                        [g = gauge_ledger_] { return SubscriptionGauge(g, /*lag=*/true); });
  }
  listener_id_ = ledger_.AddListener([this](uint64_t) {
    absl::MutexLock lock(&mu_);
    if (wake_scheduled_ || shutting_down_) return;
    wake_scheduled_ = true;
    boost::asio::post(*pool_, [this] { WakeAll(); });
  });
  poller_ = std::thread([this] { PollLoop(); });
}

ConsumeDispatcher::~ConsumeDispatcher() { Shutdown(); }

ConsumeDispatcher::Reactor* ConsumeDispatcher::Consume(grpc::CallbackServerContext* ctx,
                                                       const auth::Principal& caller) {
  SessionPtr session;
  const auth::Authenticator* recheck = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      return new Rejected(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "server is shutting down; reconnect"));
    }
    session = std::make_shared<Session>(*this, caller,
                                        absl::StrCat(broker_id_, "#", ++next_session_));
    sessions_.emplace(session.get(), session);
    if (caller.generation < rechecked_generation_) recheck = recheck_auth_;
  }
  if (recheck != nullptr) session->Recheck(*recheck);
  session->Begin();
  return session.get();
}

void ConsumeDispatcher::Post(std::function<void()> task) {
  boost::asio::post(*pool_, std::move(task));
}

void ConsumeDispatcher::WakeAll() {
  std::vector<SessionPtr> sessions;
  {
    absl::MutexLock lock(&mu_);
    wake_scheduled_ = false;
    sessions.reserve(sessions_.size());
    for (const auto& entry : sessions_) sessions.push_back(entry.second);
  }
  for (const SessionPtr& s : sessions) s->Wake();
}

void ConsumeDispatcher::Nudge(const ledger::SubscriptionKey& key) {
  std::vector<SessionPtr> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& entry : sessions_) sessions.push_back(entry.second);
  }
  for (const SessionPtr& s : sessions) s->Nudge(key);
}

void ConsumeDispatcher::PollLoop() {
  absl::MutexLock lock(&mu_);
  while (!shutting_down_) {
    mu_.AwaitWithTimeout(absl::Condition(&shutting_down_), options_.poll_interval);
    if (shutting_down_) break;
    if (wake_scheduled_ || sessions_.empty()) continue;
    wake_scheduled_ = true;
    boost::asio::post(*pool_, [this] { WakeAll(); });
  }
}

ConsumeDispatcher::SessionPtr ConsumeDispatcher::Unregister(Session* session) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return nullptr;
  SessionPtr out = std::move(it->second);
  sessions_.erase(it);
  return out;
}

bool ConsumeDispatcher::BeginLedgerCall() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return false;
  ++ledger_calls_;
  return true;
}

void ConsumeDispatcher::EndLedgerCall() {
  absl::MutexLock lock(&mu_);
  --ledger_calls_;
}

void ConsumeDispatcher::Recheck(const auth::Authenticator& auth) {
  std::vector<SessionPtr> sessions;
  {
    absl::MutexLock lock(&mu_);
    recheck_auth_ = &auth;
    rechecked_generation_ = std::max(rechecked_generation_, auth.generation());
    for (const auto& entry : sessions_) sessions.push_back(entry.second);
  }
  for (const SessionPtr& s : sessions) s->Recheck(auth);
}

size_t ConsumeDispatcher::session_count() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

void ConsumeDispatcher::Shutdown() {
  std::vector<SessionPtr> sessions;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    for (const auto& entry : sessions_) sessions.push_back(entry.second);
  }
  ledger_.RemoveListener(listener_id_);
  if (poller_.joinable()) poller_.join();
  for (const SessionPtr& s : sessions) {
    s->End(absl::UnavailableError("server is shutting down; reconnect, to any broker"));
  }
  sessions.clear();
  {
    // Leases given back and calls in flight reach the ledger before it goes.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* calls) { return *calls == 0; }, &ledger_calls_));
    stopped_ = true;
  }
  pool_->join();
  gauge_ledger_->store(nullptr);
}

}  // namespace uploadbroker::deliver
