#include "ledger/sqlite_readers.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "ledger/sqlite_subscriptions.h"
#include "ledger/sqlite_util.h"
#include "ledger/subscription_ops.h"
#include "ledger/transitions.h"

namespace uploadbroker::ledger {
namespace {

// Idle connections kept open; more are opened under load and closed after.
// The callback path reads the intent from each of the confirmer's 32
// threads at once (ingest/callback_handler.h): below that, connections are
// closed and reopened (open, a 1 GiB mapping, every statement prepared)
// hundreds of times a second (docs/benchmarks.md, issue 17: a small gain).
// An idle connection costs a file descriptor and a mapping, little memory.
constexpr size_t kMaxIdle = 64;
constexpr int kMaxPage = 1000;
// ListUploads statement shapes each connection keeps prepared.
constexpr size_t kMaxListingShapes = 16;
// A listing of one key range in named buckets (the callback path lists the
// uploads naming one key for every callback) first reads the range in index
// order, with no ORDER BY, and sorts it here when it holds at most this
// many uploads: SQLite sorts `ORDER BY seq DESC LIMIT n` in a temporary
// B-tree it opens and frees on every call, about half the cost of such a
// read (docs/benchmarks.md). A larger range is read again with the ORDER BY.
constexpr int kNarrowRangeRows = 64;
// For reserving buffers: an UploadCompleted record is typically 300-600 bytes.
constexpr size_t kTypicalEventBytes = 512;
// Connections that scan the event log map the database file instead of
// copying its pages through pread(), which is most of the cost of a
// catch-up from EARLIEST. Address space, not memory: the kernel's page
// cache backs it, shared by every connection. WAL frames are still read
// with pread(). Point reads (GetUpload, ListUploads, which the callback
// path makes for every callback) use unmapped connections: a mapped one
// remaps as the file grows, and with dozens of them that page-table work
// cost confirmed callbacks about a quarter of their rate
// (docs/benchmarks.md).
constexpr char kMmapPragma[] = "PRAGMA mmap_size=1073741824";  // 1 GiB

template <typename Message>
absl::Status ParseRecord(sqlite3_stmt* stmt, int column, Message& message,
                         absl::string_view what) {
  return ParseStored(ColumnBytes(stmt, column), message, what);
}

// Smallest string greater than every string starting with `prefix`, or ""
// if there is none (prefix of only 0xff bytes).
std::string PrefixUpperBound(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) {
    prefix.pop_back();
  }
  if (!prefix.empty()) prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

}  // namespace

struct SqliteReaders::Conn {
  Use use = Use::kPointReads;
  DbPtr db;
  // ListUploads statements by SQL text (at most kMaxListingShapes).
  absl::flat_hash_map<std::string, StmtPtr> listings;
  StmtPtr get_upload, expired_pending, read_events, last_cursor, first_cursor, count_by_state;
  std::unique_ptr<SqliteStmtCache> subs;  // subscription reads
};

// Borrows a connection for one call and returns it to the pool.
class SqliteReaders::Lease {
 public:
  Lease(SqliteReaders* pool, std::unique_ptr<Conn> conn)
      : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&& other) = default;
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (conn_ != nullptr) pool_->Release(std::move(conn_));
  }
  Conn* operator->() const { return conn_.get(); }

 private:
  SqliteReaders* pool_;
  std::unique_ptr<Conn> conn_;
};

absl::StatusOr<std::unique_ptr<SqliteReaders>> SqliteReaders::Open(
    std::string path, absl::Duration busy_timeout) {
  std::unique_ptr<SqliteReaders> readers(
      new SqliteReaders(std::move(path), busy_timeout));
  // Open one connection now so that problems show up at startup.
  UB_ASSIGN_OR_RETURN(Lease lease, readers->Acquire(Use::kPointReads));
  return readers;
}

SqliteReaders::SqliteReaders(std::string path, absl::Duration busy_timeout)
    : path_(std::move(path)), busy_timeout_(busy_timeout) {}

SqliteReaders::~SqliteReaders() = default;

absl::StatusOr<SqliteReaders::Lease> SqliteReaders::Acquire(Use use) {
  std::unique_ptr<Conn> conn;
  {
    absl::MutexLock lock(&mu_);
    auto& idle = idle_[static_cast<int>(use)];
    if (!idle.empty()) {
      conn = std::move(idle.back());
      idle.pop_back();
    }
  }
  if (conn == nullptr) {
    UB_ASSIGN_OR_RETURN(conn, OpenConn(use));
  }
  return Lease(this, std::move(conn));
}

absl::StatusOr<std::unique_ptr<SqliteReaders::Conn>> SqliteReaders::OpenConn(Use use) {
  auto conn = std::make_unique<Conn>();
  conn->use = use;
  UB_ASSIGN_OR_RETURN(conn->db, OpenDb(path_, /*create=*/false, busy_timeout_));
  sqlite3* db = conn->db.get();
  UB_RETURN_IF_ERROR(Exec(db, "PRAGMA query_only=1"));
  if (use == Use::kScans) UB_RETURN_IF_ERROR(Exec(db, kMmapPragma));
  UB_ASSIGN_OR_RETURN(
      conn->get_upload,
      Prepare(db, "SELECT record FROM intents WHERE upload_id = ?1"));
  UB_ASSIGN_OR_RETURN(
      conn->expired_pending,
      Prepare(db,
              "SELECT record FROM intents WHERE state = ?1 AND expires_at <= ?2 "
              "ORDER BY expires_at, seq LIMIT ?3"));
  UB_ASSIGN_OR_RETURN(
      conn->read_events,
      Prepare(db,
              "SELECT cursor, record FROM events WHERE cursor > ?1 "
              "ORDER BY cursor LIMIT ?2"));
  UB_ASSIGN_OR_RETURN(
      conn->last_cursor,
      Prepare(db,
              "SELECT IFNULL((SELECT seq FROM sqlite_sequence "
              "WHERE name = 'events'), 0)"));
  UB_ASSIGN_OR_RETURN(conn->count_by_state,
                      Prepare(db, "SELECT state, COUNT(*) FROM intents GROUP BY state"));
  UB_ASSIGN_OR_RETURN(conn->first_cursor,
                      Prepare(db, "SELECT IFNULL(MIN(cursor), 0) FROM events"));
  conn->subs = std::make_unique<SqliteStmtCache>(db);
  return conn;
}

void SqliteReaders::Release(std::unique_ptr<Conn> conn) {
  absl::MutexLock lock(&mu_);
  auto& idle = idle_[static_cast<int>(conn->use)];
  if (idle.size() < kMaxIdle) idle.push_back(std::move(conn));
}

absl::StatusOr<Upload> SqliteReaders::GetUpload(const std::string& upload_id) {
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3_stmt* stmt = conn->get_upload.get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, upload_id);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) {
    return absl::NotFoundError(absl::StrCat("no upload ", upload_id));
  }
  if (rc != SQLITE_ROW) return SqliteError(conn->db.get(), rc, "read upload");
  Upload upload;
  UB_RETURN_IF_ERROR(
      ParseRecord(stmt, 0, upload, absl::StrCat("upload ", upload_id)));
  return upload;
}

absl::StatusOr<UploadPage> SqliteReaders::ListUploads(const UploadQuery& query) {
  if (query.limit < 1 || query.limit > kMaxPage) {
    return absl::InvalidArgumentError(
        absl::StrCat("page limit must be 1..", kMaxPage, ", got ", query.limit));
  }
  // The filters vary, so the statement's text is built per call.
  std::string sql;
  sql.reserve(256);
  sql = "SELECT seq, record FROM intents WHERE 1";
  if (!query.before_upload_id.empty()) {
    sql += " AND seq < (SELECT seq FROM intents WHERE upload_id = ?)";
  } else if (query.before_seq > 0) {
    sql += " AND seq < ?";
  }
  if (!query.buckets.empty()) {
    sql += " AND bucket IN (?";
    for (size_t i = 1; i < query.buckets.size(); ++i) sql += ", ?";
    sql += ")";
  }
  if (!query.callers.empty()) {
    sql += " AND caller IN (?";
    for (size_t i = 1; i < query.callers.size(); ++i) sql += ", ?";
    sql += ")";
  }
  const std::string upper = PrefixUpperBound(query.key_prefix);
  if (!query.key_prefix.empty()) sql += " AND key >= ?";
  if (!upper.empty()) sql += " AND key < ?";
  if (query.state != v1::UPLOAD_STATE_UNSPECIFIED) sql += " AND state = ?";
  std::vector<std::string> scope_upper;
  if (!query.scope_prefixes.empty()) {
    sql += " AND (0";
    for (const std::string& p : query.scope_prefixes) {
      scope_upper.push_back(PrefixUpperBound(p));
      sql += scope_upper.back().empty() ? " OR key >= ?" : " OR (key >= ? AND key < ?)";
    }
    sql += ")";
  }
  const bool narrow = !query.buckets.empty() && !query.key_prefix.empty();
  const std::string unordered = sql + " LIMIT ?";
  sql += " ORDER BY seq DESC LIMIT ?";

  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  // A connection keeps the few shapes it has seen prepared: the callback
  // path lists one key per callback, always the same shape.
  auto statement = [&conn](const std::string& text) -> absl::StatusOr<sqlite3_stmt*> {
    auto cached = conn->listings.find(text);
    if (cached == conn->listings.end()) {
      UB_ASSIGN_OR_RETURN(StmtPtr prepared, Prepare(conn->db.get(), text));
      if (conn->listings.size() >= kMaxListingShapes) conn->listings.clear();
      cached = conn->listings.emplace(text, std::move(prepared)).first;
    }
    return cached->second.get();
  };
  // Binds the filters and then `limit` as the last parameter.
  auto bind = [&](sqlite3_stmt* stmt, int limit) {
    sqlite3_clear_bindings(stmt);
    int i = 0;
    if (!query.before_upload_id.empty()) {
      BindText(stmt, ++i, query.before_upload_id);
    } else if (query.before_seq > 0) {
      sqlite3_bind_int64(stmt, ++i, query.before_seq);
    }
    for (const std::string& bucket : query.buckets) BindText(stmt, ++i, bucket);
    for (const std::string& caller : query.callers) BindText(stmt, ++i, caller);
    if (!query.key_prefix.empty()) BindText(stmt, ++i, query.key_prefix);
    if (!upper.empty()) BindText(stmt, ++i, upper);
    if (query.state != v1::UPLOAD_STATE_UNSPECIFIED) {
      sqlite3_bind_int(stmt, ++i, query.state);
    }
    for (size_t s = 0; s < query.scope_prefixes.size(); ++s) {
      BindText(stmt, ++i, query.scope_prefixes[s]);
      if (!scope_upper[s].empty()) BindText(stmt, ++i, scope_upper[s]);
    }
    sqlite3_bind_int(stmt, ++i, limit);
  };

  // Fills the page from rows in seq order, newest first; false once the
  // page is full (there is a next page).
  UploadPage page;
  size_t bytes = 0;
  auto add = [&](int64_t seq, absl::string_view record) -> absl::StatusOr<bool> {
    if (static_cast<int>(page.uploads.size()) == query.limit) return false;
    Upload upload;
    UB_RETURN_IF_ERROR(ParseStored(record, upload, absl::StrCat("upload #", seq)));
    if (query.max_bytes > 0) {
      const size_t cost = UploadBytes(upload);
      if (!page.uploads.empty() && bytes + cost > query.max_bytes) return false;
      bytes += cost;
    }
    page.uploads.push_back(std::move(upload));
    page.next_before_seq = seq;
    return true;
  };

  if (narrow) {
    UB_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(unordered));
    ScopedReset reset(stmt);
    bind(stmt, kNarrowRangeRows + 1);
    std::vector<std::pair<int64_t, std::string>> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      rows.emplace_back(sqlite3_column_int64(stmt, 0), std::string(ColumnBytes(stmt, 1)));
    }
    if (rc != SQLITE_DONE) return SqliteError(conn->db.get(), rc, "list uploads");
    if (rows.size() <= static_cast<size_t>(kNarrowRangeRows)) {
      std::sort(rows.begin(), rows.end(),
                [](const auto& a, const auto& b) { return a.first > b.first; });
      bool more = false;
      for (const auto& [seq, record] : rows) {
        UB_ASSIGN_OR_RETURN(bool added, add(seq, record));
        if (!added) {
          more = true;
          break;
        }
      }
      if (!more) page.next_before_seq = 0;
      return page;
    }
  }

  UB_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, statement(sql));
  ScopedReset reset(stmt);
  bind(stmt, query.limit + 1);  // one more: is there a next page?
  int rc;
  bool more = false;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    UB_ASSIGN_OR_RETURN(bool added, add(sqlite3_column_int64(stmt, 0), ColumnBytes(stmt, 1)));
    if (!added) {
      more = true;
      break;
    }
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    return SqliteError(conn->db.get(), rc, "list uploads");
  }
  if (!more) page.next_before_seq = 0;  // no more rows
  return page;
}

absl::StatusOr<std::vector<Upload>> SqliteReaders::ClaimExpiredPending(
    absl::Time cutoff, int limit, absl::Time /*now*/, absl::Duration /*lease*/) {
  if (limit < 1) return absl::InvalidArgumentError("limit must be positive");
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3_stmt* stmt = conn->expired_pending.get();
  ScopedReset reset(stmt);
  sqlite3_bind_int(stmt, 1, v1::UPLOAD_STATE_PENDING);
  sqlite3_bind_int64(stmt, 2, absl::ToUnixNanos(cutoff));
  sqlite3_bind_int(stmt, 3, limit);
  std::vector<Upload> uploads;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    uploads.emplace_back();
    UB_RETURN_IF_ERROR(
        ParseRecord(stmt, 0, uploads.back(), "a pending upload"));
  }
  if (rc != SQLITE_DONE) {
    return SqliteError(conn->db.get(), rc, "list expired intents");
  }
  return uploads;
}

absl::StatusOr<EventRecords> SqliteReaders::ReadEventRecords(uint64_t after, int limit,
                                                             size_t max_bytes) {
  if (limit < 1) return absl::InvalidArgumentError("limit must be positive");
  EventRecords records;
  if (after >= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return records;
  }
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kScans));
  sqlite3_stmt* stmt = conn->read_events.get();
  ScopedReset reset(stmt);
  sqlite3_bind_int64(stmt, 1, static_cast<int64_t>(after));
  sqlite3_bind_int(stmt, 2, limit);
  const auto expected = static_cast<size_t>(std::min(limit, 4096));
  records.entries.reserve(expected);
  records.data.reserve(std::min(max_bytes, expected * kTypicalEventBytes));
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    absl::string_view bytes = ColumnBytes(stmt, 1);
    if (!records.entries.empty() && records.data.size() + bytes.size() > max_bytes) {
      rc = SQLITE_DONE;
      break;
    }
    records.entries.push_back({static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)),
                               records.data.size(), bytes.size()});
    records.data.append(bytes.data(), bytes.size());
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db.get(), rc, "read events");
  return records;
}

absl::StatusOr<std::map<v1::UploadState, int64_t>> SqliteReaders::CountByState() {
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3_stmt* stmt = conn->count_by_state.get();
  ScopedReset reset(stmt);
  std::map<v1::UploadState, int64_t> counts;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    counts[static_cast<v1::UploadState>(sqlite3_column_int(stmt, 0))] = sqlite3_column_int64(stmt, 1);
  }
  if (rc != SQLITE_DONE) return SqliteError(conn->db.get(), rc, "count by state");
  return counts;
}

absl::StatusOr<uint64_t> SqliteReaders::LastCursor() {
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3_stmt* stmt = conn->last_cursor.get();
  ScopedReset reset(stmt);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) return SqliteError(conn->db.get(), rc, "last cursor");
  return static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
}

absl::StatusOr<uint64_t> SqliteReaders::FirstCursor() {
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3_stmt* stmt = conn->first_cursor.get();
  ScopedReset reset(stmt);
  int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) return SqliteError(conn->db.get(), rc, "first cursor");
  return static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
}

// Each read runs in one transaction, so its rows and counts agree.
absl::StatusOr<SubscriptionState> SqliteReaders::GetSubscription(const SubscriptionKey& key,
                                                                 absl::Time now) {
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3* db = conn->db.get();
  UB_RETURN_IF_ERROR(Exec(db, "BEGIN"));
  absl::StatusOr<SubscriptionState> state = [&]() -> absl::StatusOr<SubscriptionState> {
    UB_ASSIGN_OR_RETURN(SubscriptionRow row, SqliteLoadSubscription(*conn->subs, key));
    UB_ASSIGN_OR_RETURN(DeliveryCounts counts, SqliteCountDeliveries(*conn->subs, row.id, now));
    return MakeSubscriptionState(row, counts);
  }();
  (void)Exec(db, "COMMIT");
  return state;
}

absl::StatusOr<std::vector<SubscriptionState>> SqliteReaders::ListSubscriptions(
    const std::string& caller, absl::Time now) {
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3* db = conn->db.get();
  UB_RETURN_IF_ERROR(Exec(db, "BEGIN"));
  absl::StatusOr<std::vector<SubscriptionState>> states =
      [&]() -> absl::StatusOr<std::vector<SubscriptionState>> {
    UB_ASSIGN_OR_RETURN(std::vector<SubscriptionRow> rows,
                        SqliteListSubscriptions(*conn->subs, caller));
    std::vector<SubscriptionState> out;
    for (const SubscriptionRow& row : rows) {
      UB_ASSIGN_OR_RETURN(DeliveryCounts counts,
                          SqliteCountDeliveries(*conn->subs, row.id, now));
      out.push_back(MakeSubscriptionState(row, counts));
    }
    return out;
  }();
  (void)Exec(db, "COMMIT");
  return states;
}

absl::StatusOr<std::vector<DeadLetter>> SqliteReaders::ListDeadLetters(
    const SubscriptionKey& key, uint64_t after, int limit) {
  UB_ASSIGN_OR_RETURN(Lease conn, Acquire(Use::kPointReads));
  sqlite3* db = conn->db.get();
  UB_RETURN_IF_ERROR(Exec(db, "BEGIN"));
  absl::StatusOr<std::vector<DeadLetter>> letters =
      [&]() -> absl::StatusOr<std::vector<DeadLetter>> {
    UB_ASSIGN_OR_RETURN(SubscriptionRow row, SqliteLoadSubscription(*conn->subs, key));
    UB_ASSIGN_OR_RETURN(std::vector<DeliveryRow> dead,
                        SqliteDeadDeliveries(*conn->subs, row.id, after, limit));
    std::vector<DeadLetter> out;
    for (DeliveryRow& d : dead) out.push_back({d.cursor, d.until, std::move(d.failures)});
    return out;
  }();
  (void)Exec(db, "COMMIT");
  return letters;
}

}  // namespace uploadbroker::ledger
