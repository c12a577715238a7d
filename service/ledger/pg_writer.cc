#include "ledger/pg_writer.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ledger/pg_schema.h"
#include "ledger/transitions.h"

namespace uploadbroker::ledger {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);
// How long a lost COMMIT is chased before its outcome is declared unknown.
constexpr absl::Duration kResolveFor = absl::Seconds(10);
// Markers older than this are swept. A marker is only looked for while its
// COMMIT is being resolved (kResolveFor plus one statement's timeout, well
// under a minute), so the sweep never removes one that is still needed.
constexpr char kMarkerMaxAge[] = "1 hour";
// One batch in this many (per writer) also sweeps old markers.
constexpr uint64_t kSweepEvery = 1024;

// A fresh random 128-bit batch id, as 32 hex digits (a uuid literal).
std::string NewBatchId() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();  // seeded from the OS
  absl::MutexLock lock(&mu);
  char bytes[16];
  for (char& b : bytes) b = static_cast<char>(absl::Uniform<uint8_t>(*gen));
  return absl::BytesToHexString(absl::string_view(bytes, sizeof bytes));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgWriter>> PgWriter::Open(std::string dsn) {
  std::unique_ptr<PgWriter> writer(new PgWriter(std::move(dsn)));
  UB_ASSIGN_OR_RETURN(writer->conn_, PgConn::Connect(writer->dsn_));
  UB_RETURN_IF_ERROR(EnsurePgSchema(*writer->conn_));
  return writer;
}

absl::Status PgWriter::EnsureConnected() {
  if (conn_ != nullptr && !conn_->broken()) return absl::OkStatus();
  conn_.reset();
  const absl::Time now = absl::Now();
  if (now < next_attempt_) {
    return absl::UnavailableError(absl::StrCat(
        "PostgreSQL unreachable; reconnecting in ",
        absl::FormatDuration(absl::Ceil(next_attempt_ - now, absl::Milliseconds(1)))));
  }
  absl::StatusOr<std::unique_ptr<PgConn>> conn = PgConn::Connect(dsn_);
  if (!conn.ok()) {
    backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
    next_attempt_ = absl::Now() + backoff_;
    return conn.status();
  }
  conn_ = *std::move(conn);
  backoff_ = absl::ZeroDuration();
  next_attempt_ = absl::InfinitePast();
  return absl::OkStatus();
}

absl::Status PgWriter::Forget(absl::Status status) {
  if (conn_ != nullptr && conn_->broken()) conn_.reset();
  return status;
}

absl::Status PgWriter::Begin() {
  locked_ = false;
  fetched_.clear();
  settled_.clear();
  settled_index_.clear();
  counter_at_lock_ = tx_last_cursor_ = op_last_cursor_ = 0;
  wrote_ = false;
  batch_id_ = NewBatchId();
  UB_RETURN_IF_ERROR(EnsureConnected());
  return Forget(conn_->Exec("BEGIN", "begin transaction").status());
}

absl::Status PgWriter::PrepareToAppend() {
  absl::StatusOr<PgResult> row = conn_->Query(
      "SELECT last_cursor FROM ub_event_counter FOR UPDATE", {},
      "locking the event counter");
  if (!row.ok()) return Forget(row.status());
  locked_ = true;
  counter_at_lock_ = tx_last_cursor_ = op_last_cursor_ =
      static_cast<uint64_t>(PgInt64(row->get(), 0, 0));
  return absl::OkStatus();
}

absl::Status PgWriter::LockIntents(const std::vector<std::string>& upload_ids) {
  if (upload_ids.empty()) return absl::OkStatus();
  absl::StatusOr<PgResult> rows = conn_->Query(
      "SELECT upload_id, record FROM ub_intents WHERE upload_id = ANY($1::text[]) FOR UPDATE",
      {PgParam::Text(PgTextArray(upload_ids))}, "locking intents");
  if (!rows.ok()) return Forget(rows.status());
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    std::string id(PgBytes(rows->get(), i, 0));
    Upload upload;
    UB_RETURN_IF_ERROR(ParseStored(PgBytes(rows->get(), i, 1), upload, absl::StrCat("upload ", id)));
    fetched_.emplace(std::move(id), std::move(upload));
  }
  return absl::OkStatus();
}

absl::Status PgWriter::WriteSettlements() {
  if (settled_.empty()) return absl::OkStatus();
  std::string values, events;
  std::vector<PgParam> params;
  params.reserve(settled_.size() * 8);
  for (size_t i = 0; i < settled_.size(); ++i) {
    const Settled& s = settled_[i];
    const size_t n = params.size();
    absl::StrAppend(&values, i ? ", " : "", "($", n + 1, "::text, $", n + 2, "::smallint, $",
                    n + 3, "::bytea, $", n + 4, "::bigint)");
    absl::StrAppend(&events, i ? ", " : "", "($", n + 5, "::bigint, $", n + 1, ", $", n + 6,
                    "::smallint, $", n + 7, "::bigint, $", n + 8, "::bytea)");
    params.push_back(PgParam::Text(s.upload.upload_id()));
    params.push_back(PgParam::Int(s.upload.state()));
    params.push_back(PgParam::Bytes(s.upload.SerializeAsString()));
    params.push_back(PgParam::Int(s.settled_at));
    params.push_back(PgParam::Int(static_cast<int64_t>(s.event.cursor())));
    params.push_back(PgParam::Int(s.event.type()));
    params.push_back(PgParam::Int(ToUnixNanos(s.event.committed_at())));
    params.push_back(PgParam::Bytes(s.event.SerializeAsString()));
  }
  const std::string sql = absl::StrCat(
      "WITH v(upload_id, state, record, settled_at) AS (VALUES ", values, "), "
      "settled AS (UPDATE ub_intents i SET state = v.state, record = v.record, "
      "settled_at = v.settled_at FROM v WHERE i.upload_id = v.upload_id) "
      "INSERT INTO ub_events(cursor, upload_id, type, committed_at, record) VALUES ", events);
  // The text differs with the batch's length: not worth preparing.
  return Forget(conn_->Query(sql.c_str(), params, "settle intents", /*prepare=*/false).status());
}

absl::Status PgWriter::Commit() {
  UB_RETURN_IF_ERROR(WriteSettlements());
  wrote_ = wrote_ || !settled_.empty();
  std::string sql;
  if (wrote_) {
    // The marker goes first: if it cannot be written, nothing is.
    // batch_id_ and last_marker_ are hex digits, safe as literals.
    absl::StrAppend(&sql, "INSERT INTO ub_batches(batch_id) VALUES ('", batch_id_, "'); ");
    if (!last_marker_.empty()) {
      absl::StrAppend(&sql, "DELETE FROM ub_batches WHERE batch_id = '", last_marker_, "'; ");
    }
    if (++batches_ % kSweepEvery == 0) {
      absl::StrAppend(&sql,
                      "DELETE FROM ub_batches WHERE batch_id IN (SELECT batch_id FROM "
                      "ub_batches WHERE written_at < now() - interval '",
                      kMarkerMaxAge, "' LIMIT 1000 FOR UPDATE SKIP LOCKED); ");
    }
  }
  if (locked_ && tx_last_cursor_ > counter_at_lock_) {
    // Delivered to listeners only if the transaction commits.
    absl::StrAppend(&sql, "UPDATE ub_event_counter SET last_cursor = ", tx_last_cursor_,
                    "; SELECT pg_notify('", kPgEventChannel, "', '", tx_last_cursor_, "'); ");
  }
  sql += "COMMIT";
  absl::StatusOr<PgResult> commit = conn_->Exec(sql, "commit");
  absl::Status status;
  if (commit.ok()) {
    // COMMIT of a transaction an earlier error aborted answers "ROLLBACK".
    if (absl::string_view(PQcmdStatus(commit->get())) == "ROLLBACK") {
      return absl::UnavailableError("PostgreSQL rolled the batch back");
    }
  } else if (conn_->broken()) {
    status = ResolveLostCommit(commit.status());
  } else {
    return commit.status();
  }
  if (status.ok() && wrote_) last_marker_ = batch_id_;
  return status;
}

absl::Status PgWriter::ResolveLostCommit(const absl::Status& cause) {
  conn_.reset();
  if (!wrote_) return absl::OkStatus();  // nothing written, nothing to lose
  const absl::Time deadline = absl::Now() + kResolveFor;
  absl::Status last = cause;
  while (absl::Now() < deadline) {
    absl::StatusOr<bool> committed = LookForBatch();
    if (committed.ok()) {
      if (*committed) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat(
          "connection lost during commit, and the batch was not written: ", cause.message()));
    }
    last = committed.status();
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(absl::Milliseconds(200)));
  }
  return absl::UnavailableError(absl::StrCat(
      "connection lost during commit and its outcome is unknown (",
      last.message(), "); written or not, nothing was acknowledged"));
}

absl::StatusOr<bool> PgWriter::LookForBatch() {
  UB_ASSIGN_OR_RETURN(std::unique_ptr<PgConn> conn, PgConn::Connect(dsn_));
  // The unique index makes this wait while the old transaction still runs;
  // once it has ended, the fence goes in only if the batch's marker is not
  // there, and (committed at once) keeps the batch from ever committing.
  UB_ASSIGN_OR_RETURN(
      PgResult fenced,
      conn->Query("INSERT INTO ub_batches(batch_id, fence) VALUES ($1::uuid, true) "
                  "ON CONFLICT (batch_id) DO NOTHING RETURNING batch_id",
                  {PgParam::Text(batch_id_)}, "fencing the batch of a lost commit"));
  bool committed = false;
  if (PQntuples(fenced.get()) == 0) {
    // A row was there: the batch's marker, or our fence from an earlier
    // attempt whose answer was lost. A new statement, so a new snapshot.
    UB_ASSIGN_OR_RETURN(
        PgResult found,
        conn->Query("SELECT fence::int FROM ub_batches WHERE batch_id = $1::uuid",
                    {PgParam::Text(batch_id_)}, "looking for the batch of a lost commit"));
    if (PQntuples(found.get()) == 0) {
      return absl::UnavailableError("the batch's marker vanished while looking for it");
    }
    committed = PgInt64(found.get(), 0, 0) == 0;
  }
  conn_ = std::move(conn);
  return committed;
}

void PgWriter::Rollback() {
  if (conn_ == nullptr || conn_->broken()) return;
  if (PQtransactionStatus(conn_->raw()) != PQTRANS_IDLE) {
    (void)Forget(conn_->Exec("ROLLBACK", "rollback").status());
  }
}

absl::Status PgWriter::ReleaseSavepoint() {
  tx_last_cursor_ = op_last_cursor_;
  return absl::OkStatus();
}

absl::Status PgWriter::RollbackSavepoint(const absl::Status& cause) {
  op_last_cursor_ = tx_last_cursor_;
  // Settle is an operation's last step, so a refused operation recorded
  // none; drop any all the same rather than write it.
  while (!settled_.empty() && settled_.back().event.cursor() > tx_last_cursor_) {
    settled_index_.erase(settled_.back().upload.upload_id());
    settled_.pop_back();
  }
  if (conn_ == nullptr || conn_->broken() || conn_->in_failed_transaction()) {
    (void)Forget(absl::OkStatus());
    return absl::UnavailableError(absl::StrCat(
        "PostgreSQL aborted the batch transaction after: ", cause.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<absl::Status>> PgWriter::InsertIntents(
    const std::vector<const Upload*>& intents) {
  std::string sql =
      "INSERT INTO ub_intents(upload_id, caller, bucket, key, state, expires_at, record) VALUES ";
  std::vector<PgParam> params;
  params.reserve(intents.size() * 7);
  for (size_t i = 0; i < intents.size(); ++i) {
    const Upload& intent = *intents[i];
    const size_t n = params.size();
    absl::StrAppend(&sql, i ? ", " : "", "($", n + 1, ", $", n + 2, ", $", n + 3, ", $", n + 4,
                    ", $", n + 5, ", $", n + 6, ", $", n + 7, ")");
    params.push_back(PgParam::Text(intent.upload_id()));
    params.push_back(PgParam::Text(intent.caller()));
    params.push_back(PgParam::Text(intent.bucket()));
    params.push_back(PgParam::Text(intent.key()));
    params.push_back(PgParam::Int(intent.state()));
    params.push_back(intent.has_expires_at() ? PgParam::Int(ToUnixNanos(intent.expires_at()))
                                             : PgParam::Null());
    params.push_back(PgParam::Bytes(intent.SerializeAsString()));
  }
  sql += " ON CONFLICT (upload_id) DO NOTHING RETURNING upload_id";
  // The text differs with the run's length: not worth preparing.
  absl::StatusOr<PgResult> r = conn_->Query(sql.c_str(), params, "insert intents",
                                            /*prepare=*/false);
  if (!r.ok()) return Forget(r.status());
  absl::flat_hash_set<std::string> inserted;
  wrote_ = wrote_ || PQntuples(r->get()) > 0;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    inserted.insert(std::string(PgBytes(r->get(), row, 0)));
  }
  std::vector<absl::Status> stored;
  stored.reserve(intents.size());
  for (const Upload* intent : intents) {
    stored.push_back(inserted.contains(intent->upload_id())
                         ? absl::OkStatus()
                         : absl::AlreadyExistsError(absl::StrCat(
                               "upload_id ", intent->upload_id(), " already exists")));
  }
  return stored;
}

absl::StatusOr<Upload> PgWriter::LockIntent(const std::string& upload_id) {
  if (auto it = settled_index_.find(upload_id); it != settled_index_.end()) {
    return settled_[it->second].upload;  // settled earlier in this batch
  }
  if (auto it = fetched_.find(upload_id); it != fetched_.end()) return it->second;
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      conn_->Query("SELECT record FROM ub_intents WHERE upload_id = $1 FOR UPDATE",
                   {PgParam::Text(upload_id)}, "read intent"));
  if (PQntuples(r.get()) == 0) {
    return absl::NotFoundError(absl::StrCat("no upload ", upload_id));
  }
  Upload upload;
  UB_RETURN_IF_ERROR(ParseStored(PgBytes(r.get(), 0, 0), upload,
                                 absl::StrCat("upload ", upload_id)));
  return upload;
}

absl::StatusOr<Event> PgWriter::LoadCompletedEvent(const std::string& upload_id) {
  if (auto it = settled_index_.find(upload_id); it != settled_index_.end() &&
      settled_[it->second].event.type() == v1::EVENT_TYPE_UPLOAD_COMPLETED) {
    return settled_[it->second].event;
  }
  UB_ASSIGN_OR_RETURN(
      PgResult r,
      conn_->Query("SELECT record FROM ub_events WHERE upload_id = $1 AND type = $2",
                   {PgParam::Text(upload_id), PgParam::Int(v1::EVENT_TYPE_UPLOAD_COMPLETED)},
                   "read event"));
  if (PQntuples(r.get()) == 0) {
    return absl::NotFoundError(absl::StrCat("no event for upload ", upload_id));
  }
  Event event;
  UB_RETURN_IF_ERROR(ParseStored(PgBytes(r.get(), 0, 0), event,
                                 absl::StrCat("the event of upload ", upload_id)));
  return event;
}

absl::Status PgWriter::Settle(const Upload& upload, absl::Time now, Event& event) {
  if (!locked_) return absl::InternalError("event appended without the counter lock");
  const uint64_t cursor = op_last_cursor_ + 1;
  event.set_cursor(cursor);
  settled_index_[upload.upload_id()] = settled_.size();
  settled_.push_back({upload, absl::ToUnixNanos(now), event});
  op_last_cursor_ = cursor;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PgWriter::Prune(const Retention& retention,
                                        absl::Time now, int max_rows) {
  int64_t deleted = 0;
  if (max_rows <= 0) return deleted;
  if (retention.max_events > 0 || retention.max_age > absl::ZeroDuration()) {
    UB_ASSIGN_OR_RETURN(
        PgResult head,
        conn_->Query("SELECT cursor, committed_at FROM ub_events ORDER BY cursor LIMIT $1",
                     {PgParam::Int(max_rows)}, "scan old events"));
    UB_ASSIGN_OR_RETURN(
        PgResult counter,
        conn_->Query("SELECT last_cursor FROM ub_event_counter", {}, "read last cursor"));
    const int rows = PQntuples(head.get());
    const int64_t last = PgInt64(counter.get(), 0, 0);
    int64_t bound = 0;  // delete cursors <= bound
    if (rows > 0) {
      const int64_t first = PgInt64(head.get(), 0, 0);
      if (retention.max_events > 0 && last - first + 1 > retention.max_events) {
        bound = last - retention.max_events;
      }
      if (retention.max_age > absl::ZeroDuration()) {
        const int64_t cutoff = absl::ToUnixNanos(now - retention.max_age);
        for (int i = 0; i < rows && PgInt64(head.get(), i, 1) < cutoff; ++i) {
          bound = std::max(bound, PgInt64(head.get(), i, 0));
        }
      }
      bound = std::min(bound, PgInt64(head.get(), rows - 1, 0));
    }
    if (bound > 0) {
      UB_ASSIGN_OR_RETURN(PgResult r,
                          conn_->Query("DELETE FROM ub_events WHERE cursor <= $1",
                                       {PgParam::Int(bound)}, "prune events"));
      deleted += std::stoll(PQcmdTuples(r.get()));
    }
  }
  if (retention.settled_max_age > absl::ZeroDuration()) {
    UB_ASSIGN_OR_RETURN(
        PgResult r,
        conn_->Query("DELETE FROM ub_intents WHERE seq IN (SELECT seq FROM ub_intents "
                     "WHERE settled_at < $1 ORDER BY settled_at LIMIT $2 "
                     "FOR UPDATE SKIP LOCKED)",
                     {PgParam::Int(absl::ToUnixNanos(now - retention.settled_max_age)),
                      PgParam::Int(max_rows)},
                     "prune settled intents"));
    deleted += std::stoll(PQcmdTuples(r.get()));
  }
  return deleted;
}

}  // namespace uploadbroker::ledger
