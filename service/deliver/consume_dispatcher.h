// ConsumeDispatcher: serves the Consume RPC. It owns every Consume stream
// (session) of this broker, leases events to them from the ledger and
// passes their acks, nacks and lease extensions on to the ledger.
//
// Leasing (one pump at a time per session, on the dispatcher's pool): take
// the subscription's `scanned` position (kept by the session from its
// leases; read from the ledger when idle and once a second), read the log
// after it, keep the
// events the session's stream::EventFilter matches (the filter Subscribe
// uses, built from the subscription's filter and the caller's current
// scope), and call Ledger::LeaseEvents with those candidates for at most
// the session's free room (max_in_flight minus what it holds). The ledger
// decides which events each holder gets, so competing sessions, on this
// broker or on any broker sharing the ledger, each get different events;
// it also hands out events whose lease ran out or whose retry time came.
// A session's deliveries are written in cursor order, one write in flight.
//
// Wake-ups: the ledger's listener (a commit that appended events, on any
// broker sharing the ledger) pumps every session with room; so does a poll
// every `poll_interval` (leases running out, retries coming due, acks on
// other brokers freeing nothing here but the floor); so does an ack or nack
// that frees room.
//
// Acks/nacks/extensions: a request carrying more than kMaxCursorsPerRequest
// cursors in all ends the stream with INVALID_ARGUMENT before anything is
// changed; an ack or nack for a cursor the ledger says was never delivered
// for the subscription ends it with INVALID_ARGUMENT naming the cursors.
// An extension for a lease no longer held is ignored (the event is
// delivered again). When a session ends (client gone, error, shutdown) the
// leases it still holds are given back at once as a failed attempt
// ("consumer went away"), so another consumer gets them without waiting
// for the ack deadline; a broker killed outright gives them back when the
// leases run out.
//
// Revocation: Recheck() re-authenticates every session's credential after
// a reload (like stream::EventStreamer::Recheck) and rebuilds its filter
// from the new scope; a session whose key is gone ends UNAUTHENTICATED, one
// whose subscription's filter the scope no longer covers PERMISSION_DENIED.
//
// Threads: reactions run on gRPC threads and never block; ledger reads run
// on the dispatcher's pool; ledger `done` callbacks only update the session
// and post follow-up work. Metrics (if a registry is given):
//   upload_broker_consume_deliveries_total{caller,subscription}
//   upload_broker_consume_acks_total{caller,subscription}
//   upload_broker_consume_nacks_total{caller,subscription}
//   upload_broker_subscription_dead_letters{caller,subscription}   (scrape)
//   upload_broker_subscription_lag_events{caller,subscription}     (scrape:
//       newest cursor minus ack floor)
//
// Lifetime: construct after the ledger; Shutdown() before stopping the
// grpc::Server (ends every session with UNAVAILABLE and waits for the
// ledger calls they started); destroy before the ledger.
#ifndef UPLOADBROKER_DELIVER_CONSUME_DISPATCHER_H_
#define UPLOADBROKER_DELIVER_CONSUME_DISPATCHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "auth/authenticator.h"
#include "grpcpp/support/server_callback.h"
#include "ledger/ledger.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace grpc {
class CallbackServerContext;
}  // namespace grpc

namespace uploadbroker::metrics {
class Registry;
class Counter;
}  // namespace uploadbroker::metrics

namespace uploadbroker::deliver {

class ConsumeDispatcher {
 public:
  static constexpr int kMaxCursorsPerRequest = 10000;
  static constexpr int kDefaultMaxInFlight = 100;
  static constexpr int kMaxInFlight = 1000;

  struct Options {
    // Threads running ledger reads and pumps for every session.
    int threads = 2;
    // Most log events read per pump.
    int read_batch = 512;
    // How often every session with room asks for expired leases and due
    // retries.
    absl::Duration poll_interval = absl::Seconds(1);
    // This broker's name in lease holders ("<broker_id>#<n>"); empty: random.
    std::string broker_id;
  };

  using Reactor = grpc::ServerBidiReactor<v1::ConsumeRequest, v1::ConsumeResponse>;

  // `ledger` (and `metrics`, if not null) must outlive the dispatcher.
  ConsumeDispatcher(ledger::Ledger& ledger, metrics::Registry* metrics, Options options);
  ~ConsumeDispatcher();  // Shutdown()

  ConsumeDispatcher(const ConsumeDispatcher&) = delete;
  ConsumeDispatcher& operator=(const ConsumeDispatcher&) = delete;

  // Starts a session for an authenticated caller (the Principal is held, as
  // Subscribe holds it). gRPC thread; never blocks.
  Reactor* Consume(grpc::CallbackServerContext* ctx, const auth::Principal& caller);

  // After RedriveDeadLetters: this broker's sessions of `key` ask the
  // ledger at once (other brokers' within 5 s). Any thread.
  void Nudge(const ledger::SubscriptionKey& key);

  // After auth.Reload, on the reloading thread: ends revoked sessions.
  void Recheck(const auth::Authenticator& auth);

  // Ends every session with UNAVAILABLE, gives their leases back, waits for
  // their ledger calls. Idempotent; any thread but a gRPC reaction.
  void Shutdown();

  // Sessions not yet done.
  size_t session_count() const;

  // NOT_FOUND message for a subscription the caller does not own (the same
  // for an unknown name and another caller's).
  static std::string NoSubscription(const std::string& name);

 private:
  class Session;
  friend class Session;
  using SessionPtr = std::shared_ptr<Session>;

  void Post(std::function<void()> task);
  void WakeAll();
  void PollLoop();
  SessionPtr Unregister(Session* session);
  // Counts ledger calls in flight, so Shutdown can wait for them; false
  // (make no call) once Shutdown has waited.
  bool BeginLedgerCall();
  void EndLedgerCall();

  ledger::Ledger& ledger_;
  const Options options_;
  std::string broker_id_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  metrics::Counter* deliveries_ = nullptr;
  metrics::Counter* acks_ = nullptr;
  metrics::Counter* nacks_ = nullptr;
  int listener_id_ = 0;
  std::thread poller_;
  // Read by the scrape-time gauges; null once shut down.
  std::shared_ptr<std::atomic<ledger::Ledger*>> gauge_ledger_;

  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 0;
  int ledger_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<Session*, SessionPtr> sessions_ ABSL_GUARDED_BY(mu_);
  const auth::Authenticator* recheck_auth_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t rechecked_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace uploadbroker::deliver

#endif  // UPLOADBROKER_DELIVER_CONSUME_DISPATCHER_H_
