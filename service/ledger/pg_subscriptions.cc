// PostgreSQL: PgWriter's subscription primitives and PgReaders'
// subscription reads (engine.h; rules in subscription_ops.h, tables in
// pg_schema.cc, version 3).
//
// Across brokers, every batch first locks the rows of the subscriptions
// and targets its operations touch, in one sorted SELECT ... FOR UPDATE
// (LockSubscriptions), and holds them until it commits: two brokers working
// on one subscription take turns, one batch each, and see each other's
// committed rows, so no cursor is leased to two holders while a lease runs.
// Batches on other subscriptions do not wait; nothing takes the event
// counter's lock for a subscription. Because each batch locks in one sorted
// order, before the event counter and the intents, batches never deadlock.
// A lease is a row with an end time, not a lock or a session: a broker that
// died holds nothing, and its leases are taken over once they run out.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "ledger/pg_readers.h"
#include "ledger/pg_writer.h"
#include "ledger/subscription_ops.h"
#include "ledger/transitions.h"

namespace uploadbroker::ledger {
namespace {

#define UB_PG_SUB_COLUMNS                                                                  \
  "s.id, s.caller, s.name, s.filter, s.start_after, s.ack_deadline, s.max_attempts, " \
  "s.target, s.created_at, s.ack_floor, s.scanned"
#define UB_PG_DELIVERY_COLUMNS "d.cursor, d.status, d.attempts, d.holder, d.until_at, d.failures"
// The three DeliveryCounts of subscription `s`, leases counted as running
// after parameter `now`.
#define UB_PG_COUNTS(now)                                                 \
  "LATERAL (SELECT count(*) FILTER (WHERE d.status = 2), "               \
  "count(*) FILTER (WHERE d.status = 1 AND d.until_at > " now "::bigint), " \
  "count(*) FILTER (WHERE d.status = 4) FROM ub_sub_deliveries d WHERE d.sub_id = s.id) c"

std::string Int64Array(const std::vector<uint64_t>& values) {
  return absl::StrCat("{", absl::StrJoin(values, ","), "}");
}

absl::StatusOr<SubscriptionRow> ReadSubscription(const PGresult* r, int i) {
  SubscriptionRow row;
  row.id = PgInt64(r, i, 0);
  row.spec.key.caller = std::string(PgBytes(r, i, 1));
  row.spec.key.name = std::string(PgBytes(r, i, 2));
  UB_RETURN_IF_ERROR(ParseStored(PgBytes(r, i, 3), row.spec.filter,
                                 absl::StrCat("the filter of subscription ", row.spec.key.name)));
  row.spec.start_after = static_cast<uint64_t>(PgInt64(r, i, 4));
  row.spec.ack_deadline = absl::Nanoseconds(PgInt64(r, i, 5));
  row.spec.max_delivery_attempts = static_cast<int>(PgInt64(r, i, 6));
  row.spec.target = std::string(PgBytes(r, i, 7));
  row.created_at = absl::FromUnixNanos(PgInt64(r, i, 8));
  row.ack_floor = static_cast<uint64_t>(PgInt64(r, i, 9));
  row.scanned = static_cast<uint64_t>(PgInt64(r, i, 10));
  return row;
}

absl::StatusOr<std::vector<DeliveryRow>> ReadDeliveries(const PGresult* r) {
  std::vector<DeliveryRow> rows;
  for (int i = 0; i < PQntuples(r); ++i) {
    DeliveryRow row;
    row.cursor = static_cast<uint64_t>(PgInt64(r, i, 0));
    row.status = static_cast<DeliveryStatus>(PgInt64(r, i, 1));
    row.attempts = static_cast<int>(PgInt64(r, i, 2));
    row.holder = std::string(PgBytes(r, i, 3));
    row.until = absl::FromUnixNanos(PgInt64(r, i, 4));
    UB_ASSIGN_OR_RETURN(row.failures,
                        DecodeFailures(PgBytes(r, i, 5), absl::StrCat("delivery ", row.cursor)));
    rows.push_back(std::move(row));
  }
  return rows;
}

// The state of each row of a query selecting UB_PG_SUB_COLUMNS and then
// the three counts.
absl::StatusOr<std::vector<SubscriptionState>> ReadStates(const PGresult* r) {
  std::vector<SubscriptionState> states;
  for (int i = 0; i < PQntuples(r); ++i) {
    UB_ASSIGN_OR_RETURN(SubscriptionRow row, ReadSubscription(r, i));
    states.push_back(MakeSubscriptionState(
        row, DeliveryCounts{PgInt64(r, i, 11), PgInt64(r, i, 12), PgInt64(r, i, 13)}));
  }
  return states;
}

absl::Status NoSuchSubscription(const SubscriptionKey& key) {
  return absl::NotFoundError(absl::StrCat("no subscription ", key.name));
}

}  // namespace

// --- PgWriter.

absl::StatusOr<PgResult> PgWriter::Run(const char* sql, const std::vector<PgParam>& params,
                                       absl::string_view what, bool writes) {
  absl::StatusOr<PgResult> result = conn_->Query(sql, params, what);
  if (!result.ok()) return Forget(result.status());
  // A batch that wrote rows carries a marker (a lost COMMIT is resolved).
  if (writes) wrote_ = true;
  return result;
}

absl::Status PgWriter::LockSubscriptions(const std::vector<SubscriptionKey>& keys,
                                         const std::vector<std::string>& targets) {
  if (!keys.empty()) {
    std::vector<std::string> callers, names;
    for (const SubscriptionKey& k : keys) {
      callers.push_back(k.caller);
      names.push_back(k.name);
    }
    UB_RETURN_IF_ERROR(
        Run("SELECT s.id FROM ub_subscriptions s "
            "JOIN unnest($1::text[], $2::text[]) AS k(caller, name) "
            "ON s.caller = k.caller AND s.name = k.name "
            "ORDER BY s.caller, s.name FOR UPDATE OF s",
            {PgParam::Text(PgTextArray(callers)), PgParam::Text(PgTextArray(names))},
            "locking subscriptions", /*writes=*/false)
            .status());
  }
  if (!targets.empty()) {
    UB_RETURN_IF_ERROR(Run("SELECT name FROM ub_target_leases WHERE name = ANY($1::text[]) "
                           "ORDER BY name FOR UPDATE",
                           {PgParam::Text(PgTextArray(targets))}, "locking targets",
                           /*writes=*/false)
                           .status());
  }
  return absl::OkStatus();
}

absl::StatusOr<SubscriptionRow> PgWriter::LoadSubscription(const SubscriptionKey& key) {
  UB_ASSIGN_OR_RETURN(PgResult r,
                      Run("SELECT " UB_PG_SUB_COLUMNS
                          " FROM ub_subscriptions s WHERE s.caller = $1 AND s.name = $2",
                          {PgParam::Text(key.caller), PgParam::Text(key.name)},
                          "read subscription", false));
  if (PQntuples(r.get()) == 0) return NoSuchSubscription(key);
  return ReadSubscription(r.get(), 0);
}

absl::StatusOr<int64_t> PgWriter::CountSubscriptions(const std::string& caller) {
  UB_ASSIGN_OR_RETURN(PgResult r, Run("SELECT count(*) FROM ub_subscriptions WHERE caller = $1",
                                      {PgParam::Text(caller)}, "count subscriptions", false));
  return PgInt64(r.get(), 0, 0);
}

absl::StatusOr<int64_t> PgWriter::InsertSubscription(const SubscriptionSpec& spec,
                                                     absl::Time created_at) {
  // ON CONFLICT: another broker created it since LoadSubscription looked
  // (an error would abort the whole batch).
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Run("INSERT INTO ub_subscriptions(caller, name, filter, start_after, ack_deadline, "
          "max_attempts, target, created_at, ack_floor, scanned) "
          "VALUES ($1, $2, $3::bytea, $4::bigint, $5::bigint, $6::int, $7, $8::bigint, "
          "$4::bigint, $4::bigint) ON CONFLICT (caller, name) DO NOTHING RETURNING id",
          {PgParam::Text(spec.key.caller), PgParam::Text(spec.key.name),
           PgParam::Bytes(spec.filter.SerializeAsString()),
           PgParam::Int(static_cast<int64_t>(spec.start_after)),
           PgParam::Int(absl::ToInt64Nanoseconds(spec.ack_deadline)),
           PgParam::Int(spec.max_delivery_attempts), PgParam::Text(spec.target),
           PgParam::Int(absl::ToUnixNanos(created_at))},
          "insert subscription", true));
  if (PQntuples(r.get()) == 0) {
    return absl::AbortedError(absl::StrCat("subscription ", spec.key.name,
                                           " was created by another broker meanwhile; retry"));
  }
  return PgInt64(r.get(), 0, 0);
}

absl::Status PgWriter::UpdateProgress(int64_t id, uint64_t ack_floor, uint64_t scanned) {
  return Run("UPDATE ub_subscriptions SET ack_floor = $2::bigint, scanned = $3::bigint "
             "WHERE id = $1::bigint",
             {PgParam::Int(id), PgParam::Int(static_cast<int64_t>(ack_floor)),
              PgParam::Int(static_cast<int64_t>(scanned))},
             "update subscription progress", true)
      .status();
}

absl::Status PgWriter::DeleteSubscription(int64_t id) {
  // Its delivery rows go with it (ON DELETE CASCADE).
  return Run("DELETE FROM ub_subscriptions WHERE id = $1::bigint", {PgParam::Int(id)},
             "delete subscription", true)
      .status();
}

absl::StatusOr<DeliveryCounts> PgWriter::CountDeliveries(int64_t id, absl::Time now) {
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Run("SELECT count(*) FILTER (WHERE status = 2), "
          "count(*) FILTER (WHERE status = 1 AND until_at > $2::bigint), "
          "count(*) FILTER (WHERE status = 4) FROM ub_sub_deliveries WHERE sub_id = $1::bigint",
          {PgParam::Int(id), PgParam::Int(absl::ToUnixNanos(now))}, "count deliveries", false));
  return DeliveryCounts{PgInt64(r.get(), 0, 0), PgInt64(r.get(), 0, 1), PgInt64(r.get(), 0, 2)};
}

absl::StatusOr<std::vector<DeliveryRow>> PgWriter::LoadDeliveries(
    int64_t id, const std::vector<uint64_t>& cursors) {
  if (cursors.empty()) return std::vector<DeliveryRow>();
  UB_ASSIGN_OR_RETURN(PgResult r,
                      Run("SELECT " UB_PG_DELIVERY_COLUMNS " FROM ub_sub_deliveries d "
                          "WHERE d.sub_id = $1::bigint AND d.cursor = ANY($2::bigint[]) "
                          "ORDER BY d.cursor",
                          {PgParam::Int(id), PgParam::Text(Int64Array(cursors))},
                          "read deliveries", false));
  return ReadDeliveries(r.get());
}

absl::StatusOr<std::vector<DeliveryRow>> PgWriter::DueDeliveries(int64_t id, absl::Time now,
                                                                 uint64_t after, int limit) {
  UB_ASSIGN_OR_RETURN(PgResult r,
                      Run("SELECT " UB_PG_DELIVERY_COLUMNS " FROM ub_sub_deliveries d "
                          "WHERE d.sub_id = $1::bigint AND d.status IN (1, 3) "
                          "AND d.cursor > $3::bigint AND d.until_at <= $2::bigint "
                          "ORDER BY d.cursor LIMIT $4::int",
                          {PgParam::Int(id), PgParam::Int(absl::ToUnixNanos(now)),
                           PgParam::Int(static_cast<int64_t>(after)), PgParam::Int(limit)},
                          "read due deliveries", false));
  return ReadDeliveries(r.get());
}

absl::StatusOr<std::vector<DeliveryRow>> PgWriter::DeadDeliveries(int64_t id, uint64_t after,
                                                                  int limit) {
  UB_ASSIGN_OR_RETURN(PgResult r,
                      Run("SELECT " UB_PG_DELIVERY_COLUMNS " FROM ub_sub_deliveries d "
                          "WHERE d.sub_id = $1::bigint AND d.status = 4 "
                          "AND d.cursor > $2::bigint ORDER BY d.cursor LIMIT $3::int",
                          {PgParam::Int(id), PgParam::Int(static_cast<int64_t>(after)),
                           PgParam::Int(limit)},
                          "read dead letters", false));
  return ReadDeliveries(r.get());
}

absl::Status PgWriter::PutDeliveries(int64_t id, const std::vector<DeliveryRow>& rows) {
  if (rows.empty()) return absl::OkStatus();
  std::vector<uint64_t> cursors;
  std::vector<std::string> statuses, attempts, holders, untils, failures;
  for (const DeliveryRow& row : rows) {
    cursors.push_back(row.cursor);
    statuses.push_back(absl::StrCat(static_cast<int>(row.status)));
    attempts.push_back(absl::StrCat(row.attempts));
    holders.push_back(row.holder);
    untils.push_back(absl::StrCat(absl::ToUnixNanos(row.until)));
    failures.push_back(EncodeFailures(row.failures));
  }
  return Run("INSERT INTO ub_sub_deliveries(sub_id, cursor, status, attempts, holder, "
             "until_at, failures) "
             "SELECT $1::bigint, * FROM unnest($2::bigint[], $3::smallint[], $4::int[], "
             "$5::text[], $6::bigint[], $7::text[]) "
             "ON CONFLICT (sub_id, cursor) DO UPDATE SET status = excluded.status, "
             "attempts = excluded.attempts, holder = excluded.holder, "
             "until_at = excluded.until_at, failures = excluded.failures",
             {PgParam::Int(id), PgParam::Text(Int64Array(cursors)),
              PgParam::Text(PgTextArray(statuses)), PgParam::Text(PgTextArray(attempts)),
              PgParam::Text(PgTextArray(holders)), PgParam::Text(PgTextArray(untils)),
              PgParam::Text(PgTextArray(failures))},
             "write deliveries", true)
      .status();
}

absl::StatusOr<std::optional<uint64_t>> PgWriter::FirstUnsettled(int64_t id, uint64_t above) {
  UB_ASSIGN_OR_RETURN(PgResult r,
                      Run("SELECT min(cursor) FROM ub_sub_deliveries WHERE sub_id = $1::bigint "
                          "AND status IN (1, 3) AND cursor > $2::bigint",
                          {PgParam::Int(id), PgParam::Int(static_cast<int64_t>(above))},
                          "find the first unsettled delivery", false));
  if (PQgetisnull(r.get(), 0, 0)) return std::optional<uint64_t>();
  return std::optional<uint64_t>(static_cast<uint64_t>(PgInt64(r.get(), 0, 0)));
}

absl::Status PgWriter::DeleteAckedThrough(int64_t id, uint64_t floor) {
  return Run("DELETE FROM ub_sub_deliveries WHERE sub_id = $1::bigint AND cursor <= $2::bigint "
             "AND status = 2",
             {PgParam::Int(id), PgParam::Int(static_cast<int64_t>(floor))},
             "delete settled deliveries", true)
      .status();
}

absl::StatusOr<bool> PgWriter::ClaimTarget(const std::string& name, const std::string& holder,
                                           absl::Time now, absl::Time until) {
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Run("INSERT INTO ub_target_leases(name, holder, until_at) VALUES ($1, $2, $4::bigint) "
          "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
          "until_at = excluded.until_at WHERE ub_target_leases.holder = excluded.holder "
          "OR ub_target_leases.until_at <= $3::bigint RETURNING holder",
          {PgParam::Text(name), PgParam::Text(holder), PgParam::Int(absl::ToUnixNanos(now)),
           PgParam::Int(absl::ToUnixNanos(until))},
          "claim target", true));
  return PQntuples(r.get()) == 1 && PgBytes(r.get(), 0, 0) == holder;
}

absl::Status PgWriter::ReleaseTarget(const std::string& name, const std::string& holder) {
  return Run("DELETE FROM ub_target_leases WHERE name = $1 AND holder = $2",
             {PgParam::Text(name), PgParam::Text(holder)}, "release target", true)
      .status();
}

// --- PgReaders: one statement each, so one snapshot.

absl::StatusOr<SubscriptionState> PgReaders::GetSubscription(const SubscriptionKey& key,
                                                             absl::Time now) {
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Query("SELECT " UB_PG_SUB_COLUMNS ", c.* FROM ub_subscriptions s, " UB_PG_COUNTS("$3")
            " WHERE s.caller = $1 AND s.name = $2",
            {PgParam::Text(key.caller), PgParam::Text(key.name),
             PgParam::Int(absl::ToUnixNanos(now))},
            "read subscription"));
  UB_ASSIGN_OR_RETURN(std::vector<SubscriptionState> states, ReadStates(r.get()));
  if (states.empty()) return NoSuchSubscription(key);
  return std::move(states.front());
}

absl::StatusOr<std::vector<SubscriptionState>> PgReaders::ListSubscriptions(
    const std::string& caller, absl::Time now) {
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Query("SELECT " UB_PG_SUB_COLUMNS ", c.* FROM ub_subscriptions s, " UB_PG_COUNTS("$2")
            " WHERE $1::text = '' OR s.caller = $1::text ORDER BY s.caller, s.name",
            {PgParam::Text(caller), PgParam::Int(absl::ToUnixNanos(now))},
            "list subscriptions"));
  return ReadStates(r.get());
}

absl::StatusOr<std::vector<DeadLetter>> PgReaders::ListDeadLetters(const SubscriptionKey& key,
                                                                   uint64_t after, int limit) {
  // The subscription's row comes first (with NULL delivery columns), then
  // its dead letters: NotFound needs no second statement.
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Query("SELECT " UB_PG_DELIVERY_COLUMNS " FROM ub_subscriptions s "
            "LEFT JOIN LATERAL (SELECT * FROM ub_sub_deliveries d WHERE d.sub_id = s.id "
            "AND d.status = 4 AND d.cursor > $3::bigint ORDER BY d.cursor LIMIT $4::int) d "
            "ON true WHERE s.caller = $1 AND s.name = $2 ORDER BY d.cursor",
            {PgParam::Text(key.caller), PgParam::Text(key.name),
             PgParam::Int(static_cast<int64_t>(after)), PgParam::Int(limit)},
            "list dead letters"));
  if (PQntuples(r.get()) == 0) return NoSuchSubscription(key);
  std::vector<DeadLetter> letters;
  if (PQgetisnull(r.get(), 0, 0)) return letters;
  UB_ASSIGN_OR_RETURN(std::vector<DeliveryRow> rows, ReadDeliveries(r.get()));
  for (DeliveryRow& d : rows) letters.push_back({d.cursor, d.until, std::move(d.failures)});
  return letters;
}

}  // namespace uploadbroker::ledger
