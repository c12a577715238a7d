#include "ledger/subscription_ops.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::ledger {
namespace {

bool NameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

// Valid UTF-8 without control characters: stored in text columns, where
// PostgreSQL refuses invalid UTF-8 (and an error there fails the batch).
bool PrintableText(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    if (c < 0x20 || c == 0x7f) return false;
    if (c >= 0x80) {
      if (c >= 0xc2 && c <= 0xdf) {
        extra = 1;
      } else if (c >= 0xe0 && c <= 0xef) {
        extra = 2;
      } else if (c >= 0xf0 && c <= 0xf4) {
        extra = 3;
      } else {
        return false;
      }
    }
    if (i + extra >= s.size() && extra > 0) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    if (extra >= 2) {  // no overlong forms, surrogates or code points past U+10FFFF
      const auto n = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xe0 && n < 0xa0) || (c == 0xed && n >= 0xa0) || (c == 0xf0 && n < 0x90) ||
          (c == 0xf4 && n >= 0x90)) {
        return false;
      }
    }
    i += 1 + extra;
  }
  return true;
}

absl::Status CheckName(const std::string& name, const char* field) {
  if (name.empty() || name.size() > kMaxSubscriptionName) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be 1..", kMaxSubscriptionName,
                                                   " characters, got ", name.size()));
  }
  if (!std::all_of(name.begin(), name.end(), NameChar)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " may only hold the characters A-Z a-z 0-9 . _ -"));
  }
  return absl::OkStatus();
}

absl::Status CheckCursors(const std::vector<uint64_t>& cursors, const char* field) {
  if (cursors.size() > kMaxCursorsPerCall) {
    return absl::InvalidArgumentError(absl::StrCat(field, " holds ", cursors.size(),
                                                   " cursors; at most ", kMaxCursorsPerCall));
  }
  for (uint64_t c : cursors) {
    if (c == 0 || c > static_cast<uint64_t>(INT64_MAX)) {
      return absl::InvalidArgumentError(absl::StrCat(field, " holds an invalid cursor ", c));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(absl::Duration d, absl::Duration lo, absl::Duration hi,
                           const char* field) {
  if (d < lo || d > hi) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be ", absl::FormatDuration(lo),
                                                   "..", absl::FormatDuration(hi), ", got ",
                                                   absl::FormatDuration(d)));
  }
  return absl::OkStatus();
}

std::vector<uint64_t> SortedDistinct(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

void AddFailure(DeliveryRow& row, absl::Time at, std::string reason) {
  row.failures.push_back({at, TruncateReason(std::move(reason))});
  if (row.failures.size() > kMaxFailuresKept) {
    row.failures.erase(row.failures.begin(),
                       row.failures.end() - static_cast<ptrdiff_t>(kMaxFailuresKept));
  }
}

// After a row failed an attempt: dead if it used up its attempts, otherwise
// available again at `at`.
void AfterFailure(DeliveryRow& row, const SubscriptionRow& sub, absl::Time now, absl::Time at) {
  row.holder.clear();
  if (row.attempts >= sub.spec.max_delivery_attempts) {
    row.status = DeliveryStatus::kDead;
    row.until = now;
  } else {
    row.status = DeliveryStatus::kWaiting;
    row.until = at;
  }
}

// Moves the floor up to just below the first leased or waiting row (at most
// to `scanned`), stores progress if anything moved, and deletes acknowledged
// rows at or below the floor.
absl::Status AdvanceFloor(EngineWriter& w, SubscriptionRow& sub, bool scanned_moved,
                          bool acked_any) {
  UB_ASSIGN_OR_RETURN(std::optional<uint64_t> first, w.FirstUnsettled(sub.id, sub.ack_floor));
  uint64_t floor = sub.scanned;
  if (first.has_value()) floor = std::min(floor, *first - 1);
  const bool floor_moved = floor > sub.ack_floor;
  if (floor_moved) sub.ack_floor = floor;
  if (floor_moved || scanned_moved) {
    UB_RETURN_IF_ERROR(w.UpdateProgress(sub.id, sub.ack_floor, sub.scanned));
  }
  if (floor_moved || acked_any) UB_RETURN_IF_ERROR(w.DeleteAckedThrough(sub.id, sub.ack_floor));
  return absl::OkStatus();
}

// Rows of `cursors` (sorted, distinct) by cursor, and the cursors that were
// never delivered: no row, and above the floor.
struct Found {
  std::vector<DeliveryRow> rows;
  std::vector<uint64_t> unknown;
};
absl::StatusOr<Found> Lookup(EngineWriter& w, const SubscriptionRow& sub,
                             const std::vector<uint64_t>& cursors) {
  Found found;
  UB_ASSIGN_OR_RETURN(found.rows, w.LoadDeliveries(sub.id, cursors));
  size_t r = 0;
  for (uint64_t c : cursors) {
    while (r < found.rows.size() && found.rows[r].cursor < c) ++r;
    if (r < found.rows.size() && found.rows[r].cursor == c) continue;
    if (c > sub.ack_floor) found.unknown.push_back(c);
  }
  return found;
}

absl::StatusOr<SubscriptionRow> Load(EngineWriter& w, const SubscriptionKey& key) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  return w.LoadSubscription(key);
}

}  // namespace

std::string EncodeFailures(const std::vector<FailedAttempt>& failures) {
  nlohmann::json array = nlohmann::json::array();
  for (const FailedAttempt& f : failures) {
    array.push_back({absl::ToUnixNanos(f.at), f.reason});
  }
  return array.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::vector<FailedAttempt>> DecodeFailures(absl::string_view bytes,
                                                          absl::string_view what) {
  std::vector<FailedAttempt> failures;
  if (bytes.empty()) return failures;
  nlohmann::json array = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr,
                                               /*allow_exceptions=*/false);
  if (!array.is_array()) {
    return absl::DataLossError(absl::StrCat("the failed attempts of ", what, " do not parse"));
  }
  for (const auto& item : array) {
    if (!item.is_array() || item.size() != 2 || !item[0].is_number_integer() ||
        !item[1].is_string()) {
      return absl::DataLossError(absl::StrCat("a failed attempt of ", what, " does not parse"));
    }
    failures.push_back({absl::FromUnixNanos(item[0].get<int64_t>()), item[1].get<std::string>()});
  }
  return failures;
}

absl::Status CheckSubscriptionKey(const SubscriptionKey& key) {
  if (key.caller.empty() || key.caller.size() > kMaxCallerBytes ||
      !PrintableText(key.caller)) {
    return absl::InvalidArgumentError(
        absl::StrCat("caller must be 1..", kMaxCallerBytes, " bytes of printable UTF-8"));
  }
  return CheckName(key.name, "name");
}

absl::Status CheckTargetName(const std::string& name) { return CheckName(name, "target"); }

absl::Status CheckHolder(const std::string& holder) {
  if (holder.empty() || holder.size() > kMaxHolderBytes || !PrintableText(holder)) {
    return absl::InvalidArgumentError(
        absl::StrCat("holder must be 1..", kMaxHolderBytes, " bytes of printable UTF-8"));
  }
  return absl::OkStatus();
}

absl::Status CheckSubscriptionSpec(const SubscriptionSpec& spec) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(spec.key));
  if (spec.filter.ByteSizeLong() > kMaxFilterBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter must be at most ", kMaxFilterBytes, " bytes serialized"));
  }
  if (spec.start_after > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("start_after is out of range");
  }
  UB_RETURN_IF_ERROR(
      CheckDuration(spec.ack_deadline, kMinAckDeadline, kMaxAckDeadline, "ack_deadline"));
  if (spec.max_delivery_attempts < 1 || spec.max_delivery_attempts > kMaxDeliveryAttempts) {
    return absl::InvalidArgumentError(absl::StrCat("max_delivery_attempts must be 1..",
                                                   kMaxDeliveryAttempts, ", got ",
                                                   spec.max_delivery_attempts));
  }
  if (!spec.target.empty()) UB_RETURN_IF_ERROR(CheckTargetName(spec.target));
  return absl::OkStatus();
}

std::string TruncateReason(std::string reason) {
  if (reason.size() <= kMaxReasonBytes) return reason;
  size_t n = kMaxReasonBytes;
  // Back up over UTF-8 continuation bytes so no character is cut in two.
  while (n > 0 && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80) --n;
  reason.resize(n);
  return reason;
}

SubscriptionState MakeSubscriptionState(const SubscriptionRow& row,
                                        const DeliveryCounts& counts) {
  SubscriptionState state;
  state.spec = row.spec;
  state.created_at = row.created_at;
  state.ack_floor = row.ack_floor;
  state.scanned = row.scanned;
  state.acked_above_floor = counts.acked;
  state.leased = counts.leased;
  state.dead = counts.dead;
  return state;
}

absl::StatusOr<SubscriptionState> CreateSubscriptionIn(EngineWriter& w,
                                                       const SubscriptionSpec& spec,
                                                       absl::Time now) {
  UB_RETURN_IF_ERROR(CheckSubscriptionSpec(spec));
  absl::StatusOr<SubscriptionRow> existing = w.LoadSubscription(spec.key);
  if (existing.ok()) {
    const SubscriptionSpec& old = existing->spec;
    const char* differs = nullptr;
    if (!google::protobuf::util::MessageDifferencer::Equals(old.filter, spec.filter)) {
      differs = "filter";
    } else if (old.ack_deadline != spec.ack_deadline) {
      differs = "ack_deadline";
    } else if (old.max_delivery_attempts != spec.max_delivery_attempts) {
      differs = "max_delivery_attempts";
    } else if (old.target != spec.target) {
      differs = "target";
    }
    if (differs != nullptr) {
      return absl::AlreadyExistsError(absl::StrCat("subscription ", spec.key.name,
                                                   " already exists with another ", differs));
    }
    UB_ASSIGN_OR_RETURN(DeliveryCounts counts, w.CountDeliveries(existing->id, now));
    return MakeSubscriptionState(*existing, counts);
  }
  if (!absl::IsNotFound(existing.status())) return existing.status();
  UB_ASSIGN_OR_RETURN(int64_t count, w.CountSubscriptions(spec.key.caller));
  if (count >= kMaxSubscriptionsPerCaller) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "caller already has ", count, " subscriptions; at most ", kMaxSubscriptionsPerCaller));
  }
  SubscriptionRow row;
  row.spec = spec;
  row.created_at = now;
  row.ack_floor = row.scanned = spec.start_after;
  UB_ASSIGN_OR_RETURN(row.id, w.InsertSubscription(spec, now));
  return MakeSubscriptionState(row, DeliveryCounts{});
}

absl::Status DeleteSubscriptionIn(EngineWriter& w, const SubscriptionKey& key) {
  UB_ASSIGN_OR_RETURN(SubscriptionRow sub, Load(w, key));
  return w.DeleteSubscription(sub.id);
}

absl::StatusOr<std::vector<Lease>> LeaseEventsIn(EngineWriter& w, const SubscriptionKey& key,
                                                 const std::string& holder,
                                                 const std::vector<uint64_t>& candidates,
                                                 uint64_t scanned_through, int max,
                                                 absl::Time now) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  UB_RETURN_IF_ERROR(CheckHolder(holder));
  UB_RETURN_IF_ERROR(CheckCursors(candidates, "candidates"));
  if (max < 1 || max > kMaxLeasePerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("max must be 1..", kMaxLeasePerCall, ", got ", max));
  }
  if (scanned_through > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("scanned_through is out of range");
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    if ((i > 0 && candidates[i] <= candidates[i - 1]) || candidates[i] > scanned_through) {
      return absl::InvalidArgumentError(
          "candidates must be ascending, distinct and <= scanned_through");
    }
  }
  UB_ASSIGN_OR_RETURN(SubscriptionRow sub, w.LoadSubscription(key));
  const absl::Time until = now + sub.spec.ack_deadline;
  std::vector<Lease> leases;
  std::vector<DeliveryRow> writes;
  // Rows whose lease ran out or whose retry time has come, in cursor order;
  // those that used up their attempts become dead and make room for more.
  uint64_t after = 0;
  for (;;) {
    const int want = max - static_cast<int>(leases.size());
    if (want <= 0) break;
    UB_ASSIGN_OR_RETURN(std::vector<DeliveryRow> due, w.DueDeliveries(sub.id, now, after, want));
    for (DeliveryRow& row : due) {
      after = row.cursor;
      if (row.status == DeliveryStatus::kLeased) {
        AddFailure(row, row.until, "deadline passed");
        if (row.attempts >= sub.spec.max_delivery_attempts) {
          AfterFailure(row, sub, now, now);
          writes.push_back(std::move(row));
          continue;
        }
      }
      row.status = DeliveryStatus::kLeased;
      row.attempts += 1;
      row.holder = holder;
      row.until = until;
      leases.push_back({row.cursor, row.attempts, until});
      writes.push_back(std::move(row));
    }
    if (static_cast<int>(due.size()) < want) break;
  }
  // New events, above what was scanned before (another dispatcher may have
  // scanned them meanwhile: those already have rows).
  uint64_t scanned = std::max(sub.scanned, scanned_through);
  for (uint64_t c : candidates) {
    if (c <= sub.scanned) continue;
    if (static_cast<int>(leases.size()) >= max) {
      scanned = std::max(sub.scanned, c - 1);
      break;
    }
    DeliveryRow row;
    row.cursor = c;
    row.status = DeliveryStatus::kLeased;
    row.attempts = 1;
    row.holder = holder;
    row.until = until;
    leases.push_back({c, 1, until});
    writes.push_back(std::move(row));
  }
  const bool scanned_moved = scanned != sub.scanned;
  sub.scanned = scanned;
  if (!writes.empty()) UB_RETURN_IF_ERROR(w.PutDeliveries(sub.id, writes));
  UB_RETURN_IF_ERROR(AdvanceFloor(w, sub, scanned_moved, /*acked_any=*/false));
  std::sort(leases.begin(), leases.end(),
            [](const Lease& a, const Lease& b) { return a.cursor < b.cursor; });
  return leases;
}

absl::StatusOr<AckResult> AckEventsIn(EngineWriter& w, const SubscriptionKey& key,
                                      const std::vector<uint64_t>& cursors) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  UB_RETURN_IF_ERROR(CheckCursors(cursors, "cursors"));
  UB_ASSIGN_OR_RETURN(SubscriptionRow sub, w.LoadSubscription(key));
  UB_ASSIGN_OR_RETURN(Found found, Lookup(w, sub, SortedDistinct(cursors)));
  std::vector<DeliveryRow> writes;
  for (DeliveryRow& row : found.rows) {
    // A late ack of a dead letter settles it too: the consumer did its work.
    if (row.status == DeliveryStatus::kAcked) continue;
    row.status = DeliveryStatus::kAcked;
    row.holder.clear();
    writes.push_back(std::move(row));
  }
  if (!writes.empty()) UB_RETURN_IF_ERROR(w.PutDeliveries(sub.id, writes));
  UB_RETURN_IF_ERROR(AdvanceFloor(w, sub, false, /*acked_any=*/!writes.empty()));
  return AckResult{sub.ack_floor, std::move(found.unknown)};
}

absl::StatusOr<AckResult> NackEventsIn(EngineWriter& w, const SubscriptionKey& key,
                                       const std::vector<uint64_t>& cursors,
                                       const std::string& reason, absl::Duration retry_after,
                                       absl::Time now) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  UB_RETURN_IF_ERROR(CheckCursors(cursors, "cursors"));
  UB_RETURN_IF_ERROR(
      CheckDuration(retry_after, absl::ZeroDuration(), kMaxRetryAfter, "retry_after"));
  UB_ASSIGN_OR_RETURN(SubscriptionRow sub, w.LoadSubscription(key));
  UB_ASSIGN_OR_RETURN(Found found, Lookup(w, sub, SortedDistinct(cursors)));
  std::vector<DeliveryRow> writes;
  for (DeliveryRow& row : found.rows) {
    if (row.status == DeliveryStatus::kAcked || row.status == DeliveryStatus::kDead) continue;
    AddFailure(row, now, reason);
    AfterFailure(row, sub, now, now + retry_after);
    writes.push_back(std::move(row));
  }
  if (!writes.empty()) UB_RETURN_IF_ERROR(w.PutDeliveries(sub.id, writes));
  UB_RETURN_IF_ERROR(AdvanceFloor(w, sub, false, false));
  return AckResult{sub.ack_floor, std::move(found.unknown)};
}

absl::StatusOr<std::vector<uint64_t>> ExtendLeasesIn(EngineWriter& w,
                                                     const SubscriptionKey& key,
                                                     const std::string& holder,
                                                     const std::vector<uint64_t>& cursors,
                                                     absl::Duration extension, absl::Time now) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  UB_RETURN_IF_ERROR(CheckHolder(holder));
  UB_RETURN_IF_ERROR(CheckCursors(cursors, "cursors"));
  UB_RETURN_IF_ERROR(CheckDuration(extension, kMinAckDeadline, kMaxAckDeadline, "extension"));
  UB_ASSIGN_OR_RETURN(SubscriptionRow sub, w.LoadSubscription(key));
  const std::vector<uint64_t> wanted = SortedDistinct(cursors);
  UB_ASSIGN_OR_RETURN(std::vector<DeliveryRow> rows, w.LoadDeliveries(sub.id, wanted));
  std::vector<DeliveryRow> writes;
  std::vector<uint64_t> not_held;
  size_t r = 0;
  for (uint64_t c : wanted) {
    while (r < rows.size() && rows[r].cursor < c) ++r;
    // Held: leased to `holder` and not yet run out (once it has, another
    // holder may already have it, or will).
    if (r < rows.size() && rows[r].cursor == c && rows[r].status == DeliveryStatus::kLeased &&
        rows[r].holder == holder && rows[r].until > now) {
      rows[r].until = now + extension;
      writes.push_back(rows[r]);
    } else {
      not_held.push_back(c);
    }
  }
  if (!writes.empty()) UB_RETURN_IF_ERROR(w.PutDeliveries(sub.id, writes));
  return not_held;
}

absl::StatusOr<int64_t> RedriveDeadLettersIn(EngineWriter& w, const SubscriptionKey& key,
                                             const std::vector<uint64_t>& cursors,
                                             absl::Time now) {
  UB_RETURN_IF_ERROR(CheckSubscriptionKey(key));
  UB_RETURN_IF_ERROR(CheckCursors(cursors, "cursors"));
  UB_ASSIGN_OR_RETURN(SubscriptionRow sub, w.LoadSubscription(key));
  std::vector<DeliveryRow> rows;
  if (cursors.empty()) {
    UB_ASSIGN_OR_RETURN(rows, w.DeadDeliveries(sub.id, 0, static_cast<int>(kMaxCursorsPerCall)));
  } else {
    UB_ASSIGN_OR_RETURN(rows, w.LoadDeliveries(sub.id, SortedDistinct(cursors)));
  }
  std::vector<DeliveryRow> writes;
  for (DeliveryRow& row : rows) {
    if (row.status != DeliveryStatus::kDead) continue;
    row.status = DeliveryStatus::kWaiting;
    row.attempts = 0;
    row.until = now;
    row.failures.clear();
    writes.push_back(std::move(row));
  }
  if (!writes.empty()) UB_RETURN_IF_ERROR(w.PutDeliveries(sub.id, writes));
  return static_cast<int64_t>(writes.size());
}

absl::StatusOr<bool> ClaimTargetIn(EngineWriter& w, const std::string& name,
                                   const std::string& holder, absl::Duration lease,
                                   absl::Time now) {
  UB_RETURN_IF_ERROR(CheckTargetName(name));
  UB_RETURN_IF_ERROR(CheckHolder(holder));
  UB_RETURN_IF_ERROR(CheckDuration(lease, kMinAckDeadline, kMaxAckDeadline, "lease"));
  return w.ClaimTarget(name, holder, now, now + lease);
}

absl::Status ReleaseTargetIn(EngineWriter& w, const std::string& name,
                             const std::string& holder) {
  UB_RETURN_IF_ERROR(CheckTargetName(name));
  UB_RETURN_IF_ERROR(CheckHolder(holder));
  return w.ReleaseTarget(name, holder);
}

}  // namespace uploadbroker::ledger
