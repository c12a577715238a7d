// One Consume stream (internal to ConsumeDispatcher; consume_dispatcher.h
// describes the behaviour). Every change to a session happens under its own
// lock; no lock is held while calling the ledger or gRPC's Finish/Write
// from a path that could re-enter the session synchronously.
#ifndef UPLOADBROKER_DELIVER_CONSUME_SESSION_H_
#define UPLOADBROKER_DELIVER_CONSUME_SESSION_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "deliver/consume_dispatcher.h"
#include "grpcpp/server_context.h"
#include "stream/event_filter.h"

namespace uploadbroker::deliver {

class ConsumeDispatcher::Session final
    : public ConsumeDispatcher::Reactor,
      public std::enable_shared_from_this<ConsumeDispatcher::Session> {
 public:
  Session(ConsumeDispatcher& dispatcher, auth::Principal caller, std::string holder);

  // Reads the first request (after registration).
  void Begin();
  // Leases what the session has room for (pool thread).
  void Pump();
  // Asks for a pump unless one is running (then it runs once more).
  void Wake();
  // Wake, with a lease request even when nothing seems due (a redrive).
  void Nudge(const ledger::SubscriptionKey& key);
  void Recheck(const auth::Authenticator& auth);
  // Ends with `status` (after the write in flight) and gives leases back.
  void End(absl::Status status);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  struct Held {
    int attempt = 1;
    absl::Time lease_until;
  };

  void Start();  // pool: looks the subscription up
  void HandleRequest(const v1::ConsumeRequest& req);
  // Pool: writes what was leased (reading redelivered events back).
  void AfterLease(absl::StatusOr<std::vector<ledger::Lease>> leases,
                  std::map<uint64_t, v1::Event> events, bool more_in_log, uint64_t from,
                  uint64_t through, int room);
  void AfterSettle(const char* field, std::vector<uint64_t> cursors,
                   absl::StatusOr<ledger::AckResult> result, bool acked);
  void EndLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLocked(const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int RoomLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return max_in_flight_ - static_cast<int>(held_.size());
  }
  ConsumeDispatcher& dispatcher_;
  const std::string holder_;
  v1::ConsumeRequest request_;  // the read buffer (one read in flight)

  absl::Mutex mu_;
  auth::Principal caller_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // first request seen
  bool running_ ABSL_GUARDED_BY(mu_) = false;  // subscription found, filter built
  bool finished_ ABSL_GUARDED_BY(mu_) = false; // Finish called
  std::optional<grpc::Status> end_status_ ABSL_GUARDED_BY(mu_);
  ledger::SubscriptionKey key_ ABSL_GUARDED_BY(mu_);
  v1::EventFilter requested_ ABSL_GUARDED_BY(mu_);
  std::optional<stream::EventFilter> filter_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> labels_ ABSL_GUARDED_BY(mu_);  // {caller, subscription}
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = ConsumeDispatcher::kDefaultMaxInFlight;
  std::map<uint64_t, Held> held_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ConsumeResponse> outbox_ ABSL_GUARDED_BY(mu_);
  v1::ConsumeResponse writing_message_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool pumping_ ABSL_GUARDED_BY(mu_) = false;
  bool pump_again_ ABSL_GUARDED_BY(mu_) = false;
  bool force_lease_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_lease_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Pump thread only (one pump or AfterLease at a time). A position the
  // subscription's `scanned` is known to have reached (it never goes back),
  // so a pump reads the log after it without reading the subscription
  // first. Re-read from the ledger when the log has nothing new and at
  // least once a second; its created_at must not change (a subscription
  // deleted and created again ends the session). A lease that does not
  // fill the room leaves `scanned` at or past what it was offered, so a
  // position another dispatcher moved on is caught up by the next lease.
  uint64_t known_scanned_ = 0;
  absl::Time created_at_ = absl::InfinitePast();
  absl::Time refreshed_at_ = absl::InfinitePast();
  bool refresh_ = true;
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_CONSUME_SESSION_H_
