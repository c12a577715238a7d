// Durable subscriptions: the ledger-side state of deliveries (issue 18).
//
// A subscription is a named, caller-owned view of the event log with its own
// progress. Its progress lives in the ledger, next to the log, on every
// engine, and is changed only through the Ledger methods declared in
// ledger.h (CreateSubscription ... ClaimTarget), which run on the committer
// like every other write: a change is durable before its `done` runs.
//
// Progress model. For each subscription the ledger keeps:
//   - ack_floor: every event with cursor <= ack_floor is settled for this
//     subscription (acknowledged, dead, or not matching its filter);
//   - scanned: every event with cursor <= scanned has been looked at by some
//     dispatcher, and each one that matches the filter has a delivery row;
//   - one delivery row per matching event above the floor that is leased,
//     acknowledged, waiting to be retried, or dead: its attempts, the lease's
//     holder and end, and the reason of each failed attempt.
// Which events match is decided outside the ledger (the dispatcher applies
// stream::EventFilter); the ledger trusts the dispatcher's `scanned` claim.
// Rows at or below the floor are deleted, except dead ones (kept until
// redriven or the subscription is deleted).
//
// Time: `now` is the ledger's clock (common::Clock) of the calling broker.
// Brokers sharing PostgreSQL must keep their clocks within a small part of
// the ack deadline; the lease arithmetic is documented in docs/deliveries.md.
#ifndef UPLOADBROKER_LEDGER_SUBSCRIPTIONS_H_
#define UPLOADBROKER_LEDGER_SUBSCRIPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::ledger {

// Identifies a subscription: names are unique per owning caller.
struct SubscriptionKey {
  std::string caller;
  std::string name;
  bool operator==(const SubscriptionKey& o) const {
    return caller == o.caller && name == o.name;
  }
};

// What a subscription is, as created. Two specs are "the same settings"
// when every field but `start_after` is equal (creating an existing
// subscription with the same settings returns it unchanged).
struct SubscriptionSpec {
  SubscriptionKey key;
  // Which events it delivers; already checked against the caller's scope.
  v1::EventFilter filter;
  // Deliver events with cursor > start_after (the resolved start position).
  uint64_t start_after = 0;
  absl::Duration ack_deadline = absl::Seconds(60);
  int max_delivery_attempts = 10;
  // Empty: consumed with the Consume RPC. Otherwise the name of a push
  // target from the config, which the brokers deliver to themselves.
  std::string target;
};

struct SubscriptionState {
  SubscriptionSpec spec;
  absl::Time created_at;
  uint64_t ack_floor = 0;
  uint64_t scanned = 0;
  int64_t acked_above_floor = 0;  // rows acknowledged above the floor
  int64_t leased = 0;             // rows under an unexpired lease
  int64_t dead = 0;               // dead letters held
};

// One failed attempt of a delivery.
struct FailedAttempt {
  absl::Time at;
  // "deadline passed", "consumer refused: <its message>", "target answered
  // 500", "connection refused" ...: bounded (512 bytes), log-safe text.
  std::string reason;
};

// One event handed to a consumer (or a push target) under a lease.
struct Lease {
  uint64_t cursor = 0;
  int attempt = 1;          // 1 for the first delivery
  absl::Time lease_until;   // redelivered to anyone after this unless acked
};

// A dead letter: an event set aside after max_delivery_attempts.
struct DeadLetter {
  uint64_t cursor = 0;
  absl::Time died_at;
  std::vector<FailedAttempt> attempts;  // oldest first, at most the last 20
};

// One acknowledgement's outcome. A cursor above the floor that was never
// delivered for the subscription is listed in `unknown` and changes nothing
// (the other cursors of the call are applied). A cursor at or below the
// floor is settled already: acknowledging it again is harmless, not unknown.
struct AckResult {
  uint64_t ack_floor = 0;             // after the acks
  std::vector<uint64_t> unknown;      // cursors that were never delivered
};

// Limits the ledger enforces (InvalidArgument naming the field):
//   name 1..128 of [A-Za-z0-9._-] (target names too); caller and holder
//   1..256 bytes of printable UTF-8; ack_deadline 1 s..10 min;
//   max_delivery_attempts 1..1000; at most 10,000 cursors per call
//   (acks, nacks, extensions, redrives, lease candidates); LeaseEvents max
//   1..1000; extensions and target leases 1 s..10 min; retry_after
//   0..7 days; ListDeadLetters limit 1..1000; reasons are cut to 512 bytes
//   (between characters); each delivery keeps its last 20 failed attempts.

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SUBSCRIPTIONS_H_
