// Shared by the ledger tests: builders for intents and completions, a fake
// clock at kStart, SqliteLedgerTest (a ledger file in a fresh directory) and
// LedgerContractTest, which runs the same test against each engine: SQLite,
// and PostgreSQL on a throwaway server shared by the test binary (a fresh
// database per test).
#ifndef UPLOADBROKER_TESTS_LEDGER_LEDGER_FIXTURE_H_
#define UPLOADBROKER_TESTS_LEDGER_LEDGER_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "tests/testing/fake_clock.h"
#include "gtest/gtest.h"
#include "ledger/postgres_ledger.h"
#include "ledger/sqlite_ledger.h"
#include "tests/testing/postgres_server.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::ledger {

inline constexpr absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

inline Upload Intent(const std::string& id, const std::string& bucket = "photos",
                     const std::string& caller = "app",
                     absl::Time expires_at = kStart + absl::Minutes(15)) {
  Upload upload;
  upload.set_upload_id(id);
  upload.set_caller(caller);
  upload.set_bucket(bucket);
  upload.set_key("users/" + id);
  upload.set_max_size(1 << 20);
  (*upload.mutable_metadata())["order"] = id;
  upload.mutable_expires_at()->set_seconds(absl::ToUnixSeconds(expires_at));
  upload.set_method(v1::UPLOAD_METHOD_POST);
  return upload;
}

inline Completion Done(const std::string& etag = "etag-1") {
  Completion completion;
  completion.set_size(42);
  completion.set_etag(etag);
  completion.set_source(v1::COMPLETION_SOURCE_CALLBACK);
  return completion;
}

inline std::vector<uint64_t> Cursors(const std::vector<Event>& events) {
  std::vector<uint64_t> cursors;
  for (const Event& e : events) cursors.push_back(e.cursor());
  return cursors;
}

class SqliteLedgerTest : public ::testing::Test {
 protected:
  SqliteLedger::Options Options() {
    SqliteLedger::Options options;
    options.path = path_;
    options.clock = &clock_;
    return options;
  }
  std::unique_ptr<SqliteLedger> Open() { return Open(Options()); }
  std::unique_ptr<SqliteLedger> Open(SqliteLedger::Options options) {
    auto ledger = SqliteLedger::Create(std::move(options));
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return std::move(ledger).value();
  }

  testing::TempDir dir_;
  std::string path_ = dir_.path() + "/ledger.db";
  testing::FakeClock clock_{kStart};
};

// The PostgreSQL server every contract test of this binary shares; started
// on first use, stopped at exit.
inline testing::PostgresServer& SharedPostgres() {
  static testing::PostgresServer* server = [] {
    auto* s = new testing::PostgresServer();
    absl::Status started = s->Start();
    if (!started.ok()) {
      ADD_FAILURE() << started;
    }
    static std::unique_ptr<testing::PostgresServer> owner(s);
    return s;
  }();
  return *server;
}

// TEST_P(LedgerContractTest, ...) runs on both engines. Options() are
// SQLite's; on PostgreSQL their retention and batch fields apply.
class LedgerContractTest : public SqliteLedgerTest,
                           public ::testing::WithParamInterface<std::string> {
 protected:
  bool postgres() const { return GetParam() == "postgres"; }
  std::unique_ptr<GroupCommitLedger> Open() { return Open(Options()); }
  std::unique_ptr<GroupCommitLedger> Open(SqliteLedger::Options options) {
    if (!postgres()) return SqliteLedgerTest::Open(std::move(options));
    if (dsn_.empty()) {
      auto dsn = SharedPostgres().NewDatabase();
      EXPECT_TRUE(dsn.ok()) << dsn.status();
      dsn_ = dsn.value_or("");
    }
    PostgresLedger::Options po;
    po.dsn = dsn_;
    po.ledger.clock = options.clock;
    po.ledger.max_batch = options.max_batch;
    po.ledger.retention = {options.retain_max_events, options.retain_max_age,
                           options.retain_settled_age};
    auto ledger = PostgresLedger::Create(std::move(po));
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return std::move(ledger).value();
  }

  std::string dsn_;  // this test's database, once opened
};

#define UB_LEDGER_ENGINES(suite)                                          \
  INSTANTIATE_TEST_SUITE_P(Engines, suite,                                \
                           ::testing::Values("sqlite", "postgres"),       \
                           [](const auto& info) { return info.param; })

}  // namespace uploadbroker::ledger

#endif  // UPLOADBROKER_TESTS_LEDGER_LEDGER_FIXTURE_H_
