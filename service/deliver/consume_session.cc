#include "deliver/consume_session.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/log_safe.h"
#include "common/request_limits.h"
#include "ledger/ledger.h"
#include "metrics/registry.h"

namespace uploadbroker::deliver {
namespace {

// Delay before a nacked event is offered again when the consumer names
// none: 1 s, doubling per attempt, at most 5 minutes, +-20 %.
constexpr common::Backoff kNackBackoff{absl::Seconds(1), 2.0, absl::Minutes(5), 0.2};
constexpr size_t kMaxNackMessageBytes = 256;
constexpr int kMaxExtensionSeconds = 600;
constexpr int kMaxRetryAfterSeconds = 3600;
constexpr size_t kMaxNameBytes = 128;
// An idle session still asks the ledger this often (redriven dead letters).
constexpr absl::Duration kIdleLeaseInterval = absl::Seconds(5);
// A pump reads the subscription at least this often (Session's
// known_scanned_).
constexpr absl::Duration kRefreshInterval = absl::Seconds(1);

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* ts) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

// The CloudEvents id and type of an event (deliver/cloud_event.h).
void SetCloudEventAttributes(const v1::Event& event, v1::Delivery* d) {
  const bool completed = event.type() == v1::EVENT_TYPE_UPLOAD_COMPLETED;
  const v1::Upload& upload = stream::UploadOf(event);
  d->set_cloud_event_id(absl::StrCat(upload.upload_id(), completed ? ".completed" : ".expired"));
  d->set_cloud_event_type(completed ? "com.uploadbroker.upload.completed"
                                    : "com.uploadbroker.upload.expired");
}

// "12, 13 and 3 more".
std::string CursorList(const std::vector<uint64_t>& cursors) {
  constexpr size_t kShown = 20;
  std::vector<uint64_t> shown(cursors.begin(),
                              cursors.begin() + std::min(cursors.size(), kShown));
  std::string out = absl::StrJoin(shown, ", ");
  if (cursors.size() > kShown) absl::StrAppend(&out, " and ", cursors.size() - kShown, " more");
  return out;
}

absl::Status FromLedger(const absl::Status& st, const std::string& name) {
  if (absl::IsNotFound(st)) return absl::NotFoundError(ConsumeDispatcher::NoSubscription(name));
  return st;
}

}  // namespace

ConsumeDispatcher::Session::Session(ConsumeDispatcher& dispatcher, auth::Principal caller,
                                    std::string holder)
    : dispatcher_(dispatcher), holder_(std::move(holder)), caller_(std::move(caller)) {}

void ConsumeDispatcher::Session::Begin() { StartRead(&request_); }

void ConsumeDispatcher::Session::OnReadDone(bool ok) {
  if (!ok) {
    // The consumer closed its side (or went away): it can ack nothing more.
    absl::MutexLock lock(&mu_);
    EndLocked(absl::OkStatus());
    return;
  }
  v1::ConsumeRequest req = std::move(request_);
  request_.Clear();
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    if (end_status_.has_value()) return;
    if (!started_) {
      absl::Status bad;
      if (req.subscription().empty()) {
        bad = absl::InvalidArgumentError(
            "subscription: required in the first ConsumeRequest (the subscription's name)");
      } else if (req.subscription().size() > kMaxNameBytes) {
        bad = absl::InvalidArgumentError(
            absl::StrCat("subscription: at most ", kMaxNameBytes, " bytes"));
      } else if (req.max_in_flight() > static_cast<uint32_t>(kMaxInFlight)) {
        bad = absl::InvalidArgumentError(absl::StrCat("max_in_flight: at most ", kMaxInFlight));
      } else if (req.ack_cursors_size() > 0 || req.nacks_size() > 0 || req.extensions_size() > 0) {
        bad = absl::InvalidArgumentError(
            "the first ConsumeRequest names the subscription only; send acks, nacks and "
            "extensions after events arrive");
      }
      if (!bad.ok()) {
        EndLocked(bad);
        return;
      }
      started_ = true;
      key_ = ledger::SubscriptionKey{caller_->name, req.subscription()};
      labels_ = {caller_->name, req.subscription()};
      if (req.max_in_flight() > 0) max_in_flight_ = static_cast<int>(req.max_in_flight());
      first = true;
    }
  }
  if (first) {
    auto self = shared_from_this();
    dispatcher_.Post([self] { self->Start(); });
  } else {
    HandleRequest(req);
  }
  absl::MutexLock lock(&mu_);
  if (!end_status_.has_value()) StartRead(&request_);
}

void ConsumeDispatcher::Session::Start() {
  ledger::SubscriptionKey key;
  auth::Principal caller;
  {
    absl::MutexLock lock(&mu_);
    if (end_status_.has_value()) return;
    key = key_;
    caller = caller_;
  }
  absl::StatusOr<ledger::SubscriptionState> state = dispatcher_.ledger_.GetSubscription(key);
  if (!state.ok()) {
    End(FromLedger(state.status(), key.name));
    return;
  }
  if (!state->spec.target.empty()) {
    End(absl::FailedPreconditionError(absl::StrCat(
        "subscription '", key.name, "' delivers to target '", state->spec.target,
        "': the brokers push its events themselves, so it cannot be consumed")));
    return;
  }
  absl::StatusOr<stream::EventFilter> filter = stream::EventFilter::Create(state->spec.filter, *caller);
  if (!filter.ok()) {
    End(absl::PermissionDeniedError(absl::StrCat(
        "the caller's scope no longer covers the filter of subscription '", key.name,
        "': ", filter.status().message())));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (end_status_.has_value()) return;
    // A Recheck may have replaced the Principal meanwhile; the filter is
    // rebuilt from the newest one there.
    if (caller_.generation != caller.generation) {
      filter = stream::EventFilter::Create(state->spec.filter, *caller_);
      if (!filter.ok()) {
        EndLocked(absl::PermissionDeniedError(absl::StrCat(
            "the caller's scope no longer covers the filter of subscription '", key.name,
            "': ", filter.status().message())));
        return;
      }
    }
    requested_ = state->spec.filter;
    filter_ = *std::move(filter);
    created_at_ = state->created_at;
    running_ = true;
  }
  Wake();
}

void ConsumeDispatcher::Session::Nudge(const ledger::SubscriptionKey& key) {
  {
    absl::MutexLock lock(&mu_);
    if (!(key_ == key)) return;
    force_lease_ = true;
  }
  Wake();
}

void ConsumeDispatcher::Session::Wake() {
  {
    absl::MutexLock lock(&mu_);
    if (!running_ || end_status_.has_value()) return;
    if (pumping_) {
      pump_again_ = true;
      return;
    }
    if (RoomLocked() <= 0) return;
    pumping_ = true;
  }
  auto self = shared_from_this();
  dispatcher_.Post([self] { self->Pump(); });
}

void ConsumeDispatcher::Session::Pump() {
  ledger::SubscriptionKey key;
  int room = 0;
  std::optional<stream::EventFilter> filter;
  {
    absl::MutexLock lock(&mu_);
    pump_again_ = false;
    room = RoomLocked();
    if (!running_ || end_status_.has_value() || room <= 0) {
      pumping_ = false;
      return;
    }
    key = key_;
    filter = filter_;
  }
  ledger::Ledger& ledger = dispatcher_.ledger_;
  const absl::Time now = absl::Now();
  // The subscription's state, read when the known position is due for a
  // refresh (or below, when the log has nothing new).
  std::optional<ledger::SubscriptionState> state;
  auto refresh = [&]() -> bool {
    absl::StatusOr<ledger::SubscriptionState> got = ledger.GetSubscription(key);
    if (!got.ok()) {
      End(FromLedger(got.status(), key.name));
      return false;
    }
    if (got->created_at != created_at_) {
      End(absl::NotFoundError(absl::StrCat(ConsumeDispatcher::NoSubscription(key.name),
                                           " (deleted while consumed; consume it again)")));
      return false;
    }
    state = *std::move(got);
    known_scanned_ = std::max(known_scanned_, state->scanned);
    refreshed_at_ = now;
    refresh_ = false;
    return true;
  };
  if ((refresh_ || now - refreshed_at_ >= kRefreshInterval) && !refresh()) return;
  const uint64_t from = known_scanned_;
  absl::StatusOr<std::vector<v1::Event>> events =
      ledger.ReadEvents(from, dispatcher_.options_.read_batch);
  if (!events.ok()) {
    End(events.status());
    return;
  }
  // Before the events are moved from.
  const uint64_t through = events->empty() ? from : events->back().cursor();
  std::vector<uint64_t> candidates;
  std::map<uint64_t, v1::Event> by_cursor;
  for (v1::Event& e : *events) {
    if (!filter->Matches(e)) continue;
    candidates.push_back(e.cursor());
    by_cursor.emplace(e.cursor(), std::move(e));
  }
  const bool more_in_log = static_cast<int>(events->size()) == dispatcher_.options_.read_batch;
  // Nothing new, and nothing above the floor that could be waiting for a
  // retry or an expired lease: no write needed, except now and then (and
  // when asked: Nudge) for events redriven below the floor.
  bool forced = false;
  {
    absl::MutexLock lock(&mu_);
    forced = force_lease_ || now - last_lease_ >= kIdleLeaseInterval;
    force_lease_ = false;
  }
  if (!forced && candidates.empty() && through == from) {
    if (!state.has_value() && !refresh()) return;
  }
  if (!forced && candidates.empty() && through == from && state->scanned <= from &&
      state->ack_floor >= state->scanned) {
    absl::MutexLock lock(&mu_);
    pumping_ = false;
    if (pump_again_) {
      pump_again_ = false;
      pumping_ = true;
      auto self = shared_from_this();
      dispatcher_.Post([self] { self->Pump(); });
    }
    return;
  }
  if (!dispatcher_.BeginLedgerCall()) {
    End(absl::UnavailableError("server is shutting down; reconnect"));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    last_lease_ = now;
  }
  auto self = shared_from_this();
  ledger.LeaseEvents(
      key, holder_, std::move(candidates), through, room,
      [self, by_cursor = std::move(by_cursor), more_in_log, from, through, room](
          absl::StatusOr<std::vector<ledger::Lease>> leases) mutable {
        // Reading events of redeliveries is a ledger read: not here.
        self->dispatcher_.Post([self, leases = std::move(leases), by_cursor = std::move(by_cursor),
                                more_in_log, from, through, room]() mutable {
          self->AfterLease(std::move(leases), std::move(by_cursor), more_in_log, from, through,
                           room);
          self->dispatcher_.EndLedgerCall();
        });
      });
}

void ConsumeDispatcher::Session::AfterLease(absl::StatusOr<std::vector<ledger::Lease>> leases,
                                            std::map<uint64_t, v1::Event> events,
                                            bool more_in_log, uint64_t from, uint64_t through,
                                            int room) {
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    name = key_.name;
  }
  if (!leases.ok()) {
    End(FromLedger(leases.status(), name));
    return;
  }
  std::sort(leases->begin(), leases->end(),
            [](const ledger::Lease& a, const ledger::Lease& b) { return a.cursor < b.cursor; });
  // What the lease tells about the subscription's `scanned` (the pump that
  // runs next, on this thread or after this one, reads it): the ledger
  // scanned through `through` unless the lease filled the room, and in any
  // case through the newest offered event it leased.
  uint64_t newest_new = 0;
  for (const ledger::Lease& lease : *leases) {
    if (events.count(lease.cursor) > 0) newest_new = std::max(newest_new, lease.cursor);
  }
  if (static_cast<int>(leases->size()) < room) {
    known_scanned_ = std::max(known_scanned_, through);
  } else {
    known_scanned_ = std::max(known_scanned_, std::max(from, newest_new));
  }
  v1::ConsumeResponse response;
  for (const ledger::Lease& lease : *leases) {
    auto it = events.find(lease.cursor);
    v1::Event event;
    if (it != events.end()) {
      event = std::move(it->second);
    } else {
      // A redelivery: read it back from the log.
      absl::StatusOr<std::vector<v1::Event>> one = dispatcher_.ledger_.ReadEvents(lease.cursor - 1, 1);
      if (!one.ok()) {
        End(one.status());
        return;
      }
      if (one->empty() || one->front().cursor() != lease.cursor) continue;  // retention took it
      event = std::move(one->front());
    }
    v1::Delivery* d = response.add_deliveries();
    d->set_cursor(lease.cursor);
    d->set_attempt(static_cast<uint32_t>(lease.attempt));
    SetTimestamp(lease.lease_until, d->mutable_lease_until());
    SetCloudEventAttributes(event, d);
    *d->mutable_event() = std::move(event);
  }
  absl::MutexLock lock(&mu_);
  for (const ledger::Lease& lease : *leases) {
    held_[lease.cursor] = Held{lease.attempt, lease.lease_until};
  }
  if (end_status_.has_value()) {
    // Ended while the lease was being taken: give the leases back.
    ReleaseLocked("consumer went away");
    pumping_ = false;
    return;
  }
  if (response.deliveries_size() > 0) {
    if (dispatcher_.deliveries_ != nullptr) {
      dispatcher_.deliveries_->Inc(labels_, static_cast<uint64_t>(response.deliveries_size()));
    }
    outbox_.push_back(std::move(response));
    WriteNextLocked();
  }
  pumping_ = false;
  const bool again = pump_again_ || !leases->empty() || more_in_log;
  pump_again_ = false;
  if (again && RoomLocked() > 0) {
    pumping_ = true;
    auto self = shared_from_this();
    dispatcher_.Post([self] { self->Pump(); });
  }
}

void ConsumeDispatcher::Session::HandleRequest(const v1::ConsumeRequest& req) {
  size_t cursors = static_cast<size_t>(req.ack_cursors_size()) + req.nacks_size();
  for (const v1::ConsumeExtension& e : req.extensions()) cursors += e.cursors_size();
  absl::Status bad;
  if (cursors > static_cast<size_t>(kMaxCursorsPerRequest)) {
    bad = absl::InvalidArgumentError(absl::StrCat(
        "a ConsumeRequest carries ", cursors, " cursors in ack_cursors, nacks and extensions; "
        "at most ", kMaxCursorsPerRequest, " are allowed (nothing of this request was applied)"));
  } else if (!req.subscription().empty() || req.max_in_flight() != 0) {
    bad = absl::InvalidArgumentError(
        "subscription, max_in_flight: only allowed in the first ConsumeRequest");
  }
  for (int i = 0; bad.ok() && i < req.extensions_size(); ++i) {
    const uint32_t s = req.extensions(i).seconds();
    if (s < 1 || s > static_cast<uint32_t>(kMaxExtensionSeconds)) {
      bad = absl::InvalidArgumentError(absl::StrCat("extensions[", i, "].seconds: must be 1 to ",
                                                    kMaxExtensionSeconds));
    }
  }
  for (int i = 0; bad.ok() && i < req.nacks_size(); ++i) {
    if (req.nacks(i).retry_after_seconds() > static_cast<uint32_t>(kMaxRetryAfterSeconds)) {
      bad = absl::InvalidArgumentError(absl::StrCat("nacks[", i, "].retry_after_seconds: at most ",
                                                    kMaxRetryAfterSeconds));
    }
  }
  ledger::SubscriptionKey key;
  std::vector<std::pair<uint64_t, absl::Duration>> nack_delays;
  {
    absl::MutexLock lock(&mu_);
    if (!bad.ok()) {
      EndLocked(bad);
      return;
    }
    if (end_status_.has_value()) return;
    key = key_;
    absl::BitGen random;
    for (const v1::ConsumeNack& n : req.nacks()) {
      absl::Duration delay = absl::Seconds(n.retry_after_seconds());
      if (n.retry_after_seconds() == 0) {
        auto it = held_.find(n.cursor());
        const int attempt = it == held_.end() ? 1 : it->second.attempt;
        delay = kNackBackoff.Delay(attempt - 1, absl::Uniform(random, 0.0, 1.0));
      }
      nack_delays.emplace_back(n.cursor(), delay);
    }
  }
  ledger::Ledger& ledger = dispatcher_.ledger_;
  auto self = shared_from_this();
  if (req.ack_cursors_size() > 0 && dispatcher_.BeginLedgerCall()) {
    std::vector<uint64_t> acks(req.ack_cursors().begin(), req.ack_cursors().end());
    ledger.AckEvents(key, acks, [self, acks](absl::StatusOr<ledger::AckResult> r) {
      self->AfterSettle("ack_cursors", acks, std::move(r), /*acked=*/true);
      self->dispatcher_.EndLedgerCall();
    });
  }
  for (int i = 0; i < req.nacks_size(); ++i) {
    if (!dispatcher_.BeginLedgerCall()) break;
    const v1::ConsumeNack& n = req.nacks(i);
    std::string reason = absl::StrCat("consumer refused: ",
                                      common::LogSafe(n.message(), kMaxNackMessageBytes));
    std::vector<uint64_t> one = {n.cursor()};
    ledger.NackEvents(key, one, std::move(reason), nack_delays[i].second,
                      [self, one](absl::StatusOr<ledger::AckResult> r) {
                        self->AfterSettle("nacks", one, std::move(r), /*acked=*/false);
                        self->dispatcher_.EndLedgerCall();
                      });
  }
  for (const v1::ConsumeExtension& e : req.extensions()) {
    if (e.cursors_size() == 0 || !dispatcher_.BeginLedgerCall()) continue;
    std::vector<uint64_t> cursors(e.cursors().begin(), e.cursors().end());
    const absl::Duration extension = absl::Seconds(e.seconds());
    const absl::Time asked = absl::Now();
    ledger.ExtendLeases(
        key, holder_, cursors, extension,
        [self, cursors, extension, asked](absl::StatusOr<std::vector<uint64_t>> not_held) {
          if (!not_held.ok()) {
            std::string name;
            {
              absl::MutexLock lock(&self->mu_);
              name = self->key_.name;
            }
            self->End(FromLedger(not_held.status(), name));
          } else {
            absl::MutexLock lock(&self->mu_);
            for (uint64_t c : cursors) {
              auto it = self->held_.find(c);
              if (it == self->held_.end()) continue;
              if (std::find(not_held->begin(), not_held->end(), c) != not_held->end()) {
                self->held_.erase(it);  // no longer ours: delivered again elsewhere
              } else {
                it->second.lease_until = asked + extension;
              }
            }
          }
          self->dispatcher_.EndLedgerCall();
        });
  }
}

void ConsumeDispatcher::Session::AfterSettle(const char* field, std::vector<uint64_t> cursors,
                                             absl::StatusOr<ledger::AckResult> result, bool acked) {
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    if (!result.ok()) {
      EndLocked(FromLedger(result.status(), key_.name));
      return;
    }
    std::sort(result->unknown.begin(), result->unknown.end());
    uint64_t settled = 0;
    for (uint64_t c : cursors) {
      if (std::binary_search(result->unknown.begin(), result->unknown.end(), c)) continue;
      held_.erase(c);
      ++settled;
    }
    metrics::Counter* counter = acked ? dispatcher_.acks_ : dispatcher_.nacks_;
    if (counter != nullptr && settled > 0) counter->Inc(labels_, settled);
    if (!result->unknown.empty()) {
      EndLocked(absl::InvalidArgumentError(absl::StrCat(
          field, ": cursor", result->unknown.size() == 1 ? " " : "s ", CursorList(result->unknown),
          result->unknown.size() == 1 ? " was" : " were", " never delivered for subscription '",
          key_.name, "'; nothing was changed for ", result->unknown.size() == 1 ? "it" : "them")));
      return;
    }
    wake = RoomLocked() > 0;
  }
  if (wake) Wake();
}

void ConsumeDispatcher::Session::Recheck(const auth::Authenticator& auth) {
  auth::Principal held;
  {
    absl::MutexLock lock(&mu_);
    if (end_status_.has_value()) return;
    held = caller_;
  }
  uint64_t checked = 0;
  absl::StatusOr<auth::Principal> now = auth.Recheck(held, &checked);
  absl::MutexLock lock(&mu_);
  if (end_status_.has_value() || caller_.generation > checked) return;
  if (!now.ok()) {
    EndLocked(now.status());
    return;
  }
  if (running_) {
    absl::StatusOr<stream::EventFilter> filter = stream::EventFilter::Create(requested_, **now);
    if (!filter.ok()) {
      EndLocked(absl::PermissionDeniedError(absl::StrCat(
          "the caller's scope or read_callers, changed by a configuration reload, no longer "
          "cover the filter of subscription '", key_.name, "': ", filter.status().message())));
      return;
    }
    filter_ = *std::move(filter);
  }
  caller_ = *std::move(now);
}

void ConsumeDispatcher::Session::End(absl::Status status) {
  absl::MutexLock lock(&mu_);
  EndLocked(std::move(status));
}

void ConsumeDispatcher::Session::EndLocked(absl::Status status) {
  if (end_status_.has_value()) return;
  end_status_ = common::ToGrpcStatus(status);
  outbox_.clear();
  ReleaseLocked(absl::IsUnavailable(status) ? "broker shutting down" : "consumer went away");
  if (!writing_ && !finished_) {
    finished_ = true;
    Finish(*end_status_);
  }
}

void ConsumeDispatcher::Session::ReleaseLocked(const std::string& reason) {
  if (held_.empty()) return;
  std::vector<uint64_t> cursors;
  const absl::Time now = absl::Now();
  for (const auto& [cursor, held] : held_) {
    // A lease already run out may belong to another consumer by now.
    if (held.lease_until > now) cursors.push_back(cursor);
  }
  held_.clear();
  if (cursors.empty() || !dispatcher_.BeginLedgerCall()) return;
  ConsumeDispatcher& dispatcher = dispatcher_;
  // Posted: the ledger may answer synchronously, and this lock is held.
  dispatcher_.Post([&dispatcher, key = key_, cursors = std::move(cursors), reason] {
    dispatcher.ledger_.NackEvents(key, cursors, reason, absl::ZeroDuration(),
                                  [&dispatcher](absl::StatusOr<ledger::AckResult>) {
                                    dispatcher.EndLedgerCall();
                                  });
  });
}

void ConsumeDispatcher::Session::WriteNextLocked() {
  if (writing_ || finished_ || end_status_.has_value() || outbox_.empty()) return;
  writing_message_ = std::move(outbox_.front());
  outbox_.pop_front();
  writing_ = true;
  StartWrite(&writing_message_);
}

void ConsumeDispatcher::Session::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  writing_message_.Clear();
  if (!ok) {
    EndLocked(absl::CancelledError("write failed: the consumer went away"));
    if (!finished_) {
      finished_ = true;
      Finish(*end_status_);
    }
    return;
  }
  if (end_status_.has_value()) {
    if (!finished_) {
      finished_ = true;
      Finish(*end_status_);
    }
    return;
  }
  WriteNextLocked();
}

void ConsumeDispatcher::Session::OnCancel() {
  absl::MutexLock lock(&mu_);
  EndLocked(absl::CancelledError("the consumer went away"));
}

void ConsumeDispatcher::Session::OnDone() {
  SessionPtr self = dispatcher_.Unregister(this);  // freed when this returns
}

}  // namespace uploadbroker::deliver
