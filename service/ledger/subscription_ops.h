// The rules of the subscription writes (subscriptions.h: the progress
// model), on top of an engine's primitives (engine.h), shared by every
// engine. Internal to ledger/; called by GroupCommitLedger on its
// committer, each inside one operation's savepoint.
//
// Every function checks its input and reads what it needs before it writes
// anything, so a refusal (InvalidArgument, NotFound, AlreadyExists ...)
// leaves nothing to undo (PgWriter has no SQL savepoints). Errors after the
// first write come only from the engine and doom the batch.
#ifndef UPLOADBROKER_LEDGER_SUBSCRIPTION_OPS_H_
#define UPLOADBROKER_LEDGER_SUBSCRIPTION_OPS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ledger/engine.h"
#include "ledger/subscriptions.h"

namespace uploadbroker::ledger {

// Limits checked at the ledger (InvalidArgument naming the field).
inline constexpr size_t kMaxSubscriptionName = 128;     // [A-Za-z0-9._-]
inline constexpr size_t kMaxCallerBytes = 256;
inline constexpr size_t kMaxHolderBytes = 256;
inline constexpr size_t kMaxFilterBytes = 64 * 1024;   // serialized
inline constexpr absl::Duration kMinAckDeadline = absl::Seconds(1);
inline constexpr absl::Duration kMaxAckDeadline = absl::Minutes(10);
inline constexpr int kMaxDeliveryAttempts = 1000;
inline constexpr size_t kMaxCursorsPerCall = 10'000;    // acks, nacks, candidates ...
inline constexpr int kMaxLeasePerCall = 1000;
inline constexpr size_t kMaxReasonBytes = 512;
inline constexpr absl::Duration kMaxRetryAfter = absl::Hours(24 * 7);
inline constexpr size_t kMaxFailuresKept = 20;          // per delivery row
inline constexpr int64_t kMaxSubscriptionsPerCaller = 1000;
inline constexpr int kMaxDeadLetterPage = 1000;

absl::Status CheckSubscriptionKey(const SubscriptionKey& key);
absl::Status CheckSubscriptionSpec(const SubscriptionSpec& spec);
// A target's name: the same rules as a subscription's name.
absl::Status CheckTargetName(const std::string& name);
absl::Status CheckHolder(const std::string& holder);
// `reason` cut to kMaxReasonBytes at a UTF-8 character boundary.
std::string TruncateReason(std::string reason);

SubscriptionState MakeSubscriptionState(const SubscriptionRow& row,
                                        const DeliveryCounts& counts);

absl::StatusOr<SubscriptionState> CreateSubscriptionIn(EngineWriter& w,
                                                       const SubscriptionSpec& spec,
                                                       absl::Time now);
absl::Status DeleteSubscriptionIn(EngineWriter& w, const SubscriptionKey& key);
absl::StatusOr<std::vector<Lease>> LeaseEventsIn(EngineWriter& w, const SubscriptionKey& key,
                                                 const std::string& holder,
                                                 const std::vector<uint64_t>& candidates,
                                                 uint64_t scanned_through, int max,
                                                 absl::Time now);
absl::StatusOr<AckResult> AckEventsIn(EngineWriter& w, const SubscriptionKey& key,
                                      const std::vector<uint64_t>& cursors);
absl::StatusOr<AckResult> NackEventsIn(EngineWriter& w, const SubscriptionKey& key,
                                       const std::vector<uint64_t>& cursors,
                                       const std::string& reason, absl::Duration retry_after,
                                       absl::Time now);
absl::StatusOr<std::vector<uint64_t>> ExtendLeasesIn(EngineWriter& w,
                                                     const SubscriptionKey& key,
                                                     const std::string& holder,
                                                     const std::vector<uint64_t>& cursors,
                                                     absl::Duration extension, absl::Time now);
absl::StatusOr<int64_t> RedriveDeadLettersIn(EngineWriter& w, const SubscriptionKey& key,
                                             const std::vector<uint64_t>& cursors,
                                             absl::Time now);
absl::StatusOr<bool> ClaimTargetIn(EngineWriter& w, const std::string& name,
                                   const std::string& holder, absl::Duration lease,
                                   absl::Time now);
absl::Status ReleaseTargetIn(EngineWriter& w, const std::string& name,
                             const std::string& holder);

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_LEDGER_SUBSCRIPTION_OPS_H_
