#include "ledger/pg_readers.h"

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ledger/transitions.h"

namespace uploadbroker::ledger {
namespace {

constexpr int kMaxPage = 1000;

}  // namespace

absl::StatusOr<std::unique_ptr<PgConn>> PgReaders::Borrow() {
  {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(this, &PgReaders::Available), max_wait_)) {
      return absl::UnavailableError(absl::StrCat(
          "PostgreSQL: all ", max_open_,
          " read connections stayed busy for ", absl::FormatDuration(max_wait_),
          " (ledger.postgres.max_read_connections)"));
    }
    if (!idle_.empty()) {
      std::unique_ptr<PgConn> conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    ++open_;  // this slot is ours while connecting
  }
  absl::StatusOr<std::unique_ptr<PgConn>> conn = PgConn::Connect(dsn_);
  if (!conn.ok()) Return(nullptr);
  return conn;
}

void PgReaders::Return(std::unique_ptr<PgConn> conn) {
  absl::MutexLock lock(&mu_);
  if (conn != nullptr && !conn->broken()) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
}

absl::StatusOr<PgResult> PgReaders::Query(const char* sql,
                                          const std::vector<PgParam>& params,
                                          absl::string_view what) {
  UB_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, Borrow());
  absl::StatusOr<PgResult> result = conn->Query(sql, params, what);
  Return(std::move(conn));
  return result;
}

absl::StatusOr<Upload> PgReaders::GetUpload(const std::string& upload_id) {
  UB_ASSIGN_OR_RETURN(PgResult r,
                      Query("SELECT record FROM ub_intents WHERE upload_id = $1",
                            {PgParam::Text(upload_id)}, "read upload"));
  if (PQntuples(r.get()) == 0) {
    return absl::NotFoundError(absl::StrCat("no upload ", upload_id));
  }
  Upload upload;
  UB_RETURN_IF_ERROR(ParseStored(PgBytes(r.get(), 0, 0), upload,
                           absl::StrCat("upload ", upload_id)));
  return upload;
}

absl::StatusOr<UploadPage> PgReaders::ListUploads(const UploadQuery& query) {
  if (query.limit < 1 || query.limit > kMaxPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("page limit must be 1..", kMaxPage, ", got ", query.limit));
  }
  // Filters vary, so the statement is built per call; every value is a
  // parameter.
  std::string sql = "SELECT seq, record FROM ub_intents WHERE true";
  std::vector<PgParam> params;
  auto next = [&params](PgParam p) {
    params.push_back(std::move(p));
    return absl::StrCat("$", params.size());
  };
  if (!query.before_upload_id.empty()) {
    absl::StrAppend(&sql, " AND seq < (SELECT seq FROM ub_intents WHERE upload_id = ",
                    next(PgParam::Text(query.before_upload_id)), ")");
  } else if (query.before_seq > 0) {
    absl::StrAppend(&sql, " AND seq < ", next(PgParam::Int(query.before_seq)));
  }
  if (!query.buckets.empty()) {
    absl::StrAppend(&sql, " AND bucket IN (");
    for (size_t i = 0; i < query.buckets.size(); ++i) {
      absl::StrAppend(&sql, i ? ", " : "", next(PgParam::Text(query.buckets[i])));
    }
    absl::StrAppend(&sql, ")");
  }
  if (!query.callers.empty()) {
    absl::StrAppend(&sql, " AND caller IN (");
    for (size_t i = 0; i < query.callers.size(); ++i) {
      absl::StrAppend(&sql, i ? ", " : "", next(PgParam::Text(query.callers[i])));
    }
    absl::StrAppend(&sql, ")");
  }
  if (!query.key_prefix.empty()) {
    // starts_with compares bytes; the "C" collation keeps it exact.
    absl::StrAppend(&sql, " AND starts_with(key, ", next(PgParam::Text(query.key_prefix)),
                    ")");
  }
  if (query.state != v1::UPLOAD_STATE_UNSPECIFIED) {
    absl::StrAppend(&sql, " AND state = ", next(PgParam::Int(query.state)));
  }
  if (!query.scope_prefixes.empty()) {
    absl::StrAppend(&sql, " AND (false");
    for (const std::string& p : query.scope_prefixes) {
      absl::StrAppend(&sql, " OR starts_with(key, ", next(PgParam::Text(p)), ")");
    }
    absl::StrAppend(&sql, ")");
  }
  absl::StrAppend(&sql, " ORDER BY seq DESC LIMIT ", next(PgParam::Int(query.limit + 1)));
  UB_ASSIGN_OR_RETURN(PgResult r, Query(sql.c_str(), params, "list uploads"));
  UploadPage page;
  const int rows = PQntuples(r.get());
  size_t bytes = 0;
  int i = 0;
  for (; i < rows && i < query.limit; ++i) {
    const int64_t seq = PgInt64(r.get(), i, 0);
    Upload upload;
    UB_RETURN_IF_ERROR(
        ParseStored(PgBytes(r.get(), i, 1), upload, absl::StrCat("upload #", seq)));
    const size_t cost = UploadBytes(upload);
    if (query.max_bytes > 0 && !page.uploads.empty() && bytes + cost > query.max_bytes) break;
    bytes += cost;
    page.uploads.push_back(std::move(upload));
    page.next_before_seq = seq;
  }
  if (i == rows) page.next_before_seq = 0;  // every row taken: no more
  return page;
}

absl::StatusOr<std::vector<Upload>> PgReaders::ClaimExpiredPending(
    absl::Time cutoff, int limit, absl::Time now, absl::Duration lease) {
  if (limit < 1) return absl::InvalidArgumentError("limit must be positive");
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Query("UPDATE ub_intents SET probe_until = $4 WHERE seq IN ("
            "SELECT seq FROM ub_intents WHERE state = $1 AND expires_at <= $2 "
            "AND (probe_until IS NULL OR probe_until <= $5) "
            "ORDER BY expires_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED) "
            "RETURNING expires_at, seq, record",
            {PgParam::Int(v1::UPLOAD_STATE_PENDING),
             PgParam::Int(absl::ToUnixNanos(cutoff)), PgParam::Int(limit),
             PgParam::Int(absl::ToUnixNanos(now + lease)),
             PgParam::Int(absl::ToUnixNanos(now))},
            "claim expired intents"));
  // RETURNING has no order: oldest first again.
  std::vector<std::tuple<int64_t, int64_t, int>> order;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    order.emplace_back(PgInt64(r.get(), i, 0), PgInt64(r.get(), i, 1), i);
  }
  std::sort(order.begin(), order.end());
  std::vector<Upload> uploads(order.size());
  for (size_t i = 0; i < uploads.size(); ++i) {
    UB_RETURN_IF_ERROR(ParseStored(PgBytes(r.get(), std::get<2>(order[i]), 2), uploads[i],
                             "a pending upload"));
  }
  return uploads;
}

absl::StatusOr<EventRecords> PgReaders::ReadEventRecords(uint64_t after, int limit,
                                                         size_t max_bytes) {
  if (limit < 1) return absl::InvalidArgumentError("limit must be positive");
  EventRecords records;
  if (after >= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return records;
  }
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      Query("SELECT cursor, record FROM ub_events WHERE cursor > $1 "
            "ORDER BY cursor LIMIT $2",
            {PgParam::Int(static_cast<int64_t>(after)), PgParam::Int(limit)},
            "read events"));
  const int rows = PQntuples(r.get());
  records.entries.reserve(rows);
  for (int i = 0; i < rows; ++i) {
    absl::string_view bytes = PgBytes(r.get(), i, 1);
    if (!records.entries.empty() && records.data.size() + bytes.size() > max_bytes) {
      break;
    }
    records.entries.push_back({static_cast<uint64_t>(PgInt64(r.get(), i, 0)),
                               records.data.size(), bytes.size()});
    records.data.append(bytes.data(), bytes.size());
  }
  return records;
}

absl::StatusOr<uint64_t> PgReaders::LastCursor() {
  UB_ASSIGN_OR_RETURN(PgResult r, Query("SELECT last_cursor FROM ub_event_counter", {},
                                        "last cursor"));
  return static_cast<uint64_t>(PgInt64(r.get(), 0, 0));
}

absl::StatusOr<uint64_t> PgReaders::FirstCursor() {
  UB_ASSIGN_OR_RETURN(PgResult r, Query("SELECT coalesce(min(cursor), 0) FROM ub_events",
                                        {}, "first cursor"));
  return static_cast<uint64_t>(PgInt64(r.get(), 0, 0));
}

absl::StatusOr<std::map<v1::UploadState, int64_t>> PgReaders::CountByState() {
  UB_ASSIGN_OR_RETURN(PgResult r,
                      Query("SELECT state, count(*) FROM ub_intents GROUP BY state", {},
                            "count by state"));
  std::map<v1::UploadState, int64_t> counts;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    counts[static_cast<v1::UploadState>(PgInt64(r.get(), i, 0))] = PgInt64(r.get(), i, 1);
  }
  return counts;
}

}  // namespace uploadbroker::ledger
