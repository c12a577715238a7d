// What only PostgresLedger promises: several brokers on one database
// (cursors in commit order, every broker hears every event, one completion
// per upload), the schema guard, secrets kept out of errors, and recovery
// from a database restart without restarting the broker.
#include "ledger/postgres_ledger.h"

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ledger/ledger_fixture.h"
#include "tests/ledger/subscription_helpers.h"

namespace uploadbroker::ledger {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PostgresLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dsn = SharedPostgres().NewDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
  }
  std::unique_ptr<PostgresLedger> Open(absl::Duration poll = absl::Seconds(1)) {
    PostgresLedger::Options options;
    options.poll_interval = poll;
    return Open(std::move(options));
  }
  std::unique_ptr<PostgresLedger> Open(PostgresLedger::Options options) {
    options.dsn = dsn_;
    options.ledger.clock = &clock_;
    auto ledger = PostgresLedger::Create(std::move(options));
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return std::move(ledger).value();
  }
  void Sql(const std::string& sql) {
    PGconn* conn = PQconnectdb(dsn_.c_str());
    PGresult* r = PQexec(conn, sql.c_str());
    EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(conn);
  }

  std::string dsn_;
  testing::FakeClock clock_{kStart};
};

// Two brokers commit completions as fast as they can while a third tails
// the log with ReadEvents(after): the reader must see 1, 2, 3, ... with no
// gap (an event with a smaller cursor becoming visible after a larger one)
// and no repeat.
TEST_F(PostgresLedgerTest, TwoBrokersCommitInCursorOrderForATailingReader) {
  constexpr int kPerWriter = 300;
  constexpr int kThreadsPerBroker = 4;
  auto a = Open();
  auto b = Open();
  auto reader = Open();
  for (int i = 0; i < 2 * kPerWriter; ++i) {
    ASSERT_TRUE(CreateIntentSync(*a, Intent(absl::StrCat("u", i))).ok());
  }
  std::atomic<bool> done{false};
  std::vector<uint64_t> seen;
  std::thread tail([&] {
    uint64_t after = 0;
    while (after < 2 * kPerWriter) {
      auto events = reader->ReadEvents(after, 50);
      ASSERT_TRUE(events.ok()) << events.status();
      for (const Event& e : *events) {
        seen.push_back(e.cursor());
        after = e.cursor();
      }
      if (events->empty() && done) break;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 2 * kThreadsPerBroker; ++t) {
    writers.emplace_back([&, t] {
      Ledger& broker = t % 2 == 0 ? *a : *b;
      for (int i = t; i < 2 * kPerWriter; i += 2 * kThreadsPerBroker) {
        auto r = CompleteUploadSync(broker, absl::StrCat("u", i), Done());
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_TRUE(r->appended);
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  tail.join();
  ASSERT_EQ(seen.size(), 2u * kPerWriter);
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], i + 1) << "at " << i;
}

// Every batch that writes leaves a marker row (pg_writer.h) and deletes the
// previous one: after 200 batches the table holds one row, not 200.
TEST_F(PostgresLedgerTest, CommitMarkersDoNotAccumulate) {
  auto ledger = Open();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(CreateIntentSync(*ledger, Intent(absl::StrCat("m", i))).ok());
    ASSERT_TRUE(CompleteUploadSync(*ledger, absl::StrCat("m", i), Done()).ok());
  }
  PGconn* conn = PQconnectdb(dsn_.c_str());
  PGresult* r = PQexec(conn, "SELECT count(*) FROM ub_batches WHERE NOT fence");
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  EXPECT_STREQ(PQgetvalue(r, 0, 0), "1");
  PQclear(r);
  PQfinish(conn);
}

TEST_F(PostgresLedgerTest, ListenersHearEventsCommittedByAnotherBroker) {
  auto a = Open();
  // A long poll interval: only the notification can deliver in time.
  auto b = Open(absl::Hours(1));
  absl::Notification heard;
  std::atomic<uint64_t> cursor{0};
  int id = b->AddListener([&](uint64_t c) {
    cursor = c;
    if (c >= 1 && !heard.HasBeenNotified()) heard.Notify();
  });
  ASSERT_TRUE(CreateIntentSync(*a, Intent("x")).ok());
  ASSERT_TRUE(CompleteUploadSync(*a, "x", Done()).ok());
  EXPECT_TRUE(heard.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(cursor.load(), 1u);
  b->RemoveListener(id);
}

TEST_F(PostgresLedgerTest, RacingBrokersCompleteAnUploadOnce) {
  auto a = Open();
  auto b = Open();
  constexpr int kUploads = 50;
  for (int i = 0; i < kUploads; ++i) {
    ASSERT_TRUE(CreateIntentSync(*a, Intent(absl::StrCat("r", i))).ok());
  }
  std::atomic<int> appended{0};
  auto race = [&](Ledger& broker, const std::string& etag) {
    for (int i = 0; i < kUploads; ++i) {
      auto r = CompleteUploadSync(broker, absl::StrCat("r", i), Done(etag));
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->appended) ++appended;
    }
  };
  std::thread ta([&] { race(*a, "from-a"); });
  std::thread tb([&] { race(*b, "from-b"); });
  ta.join();
  tb.join();
  EXPECT_EQ(appended.load(), kUploads);
  EXPECT_EQ(*a->LastCursor(), static_cast<uint64_t>(kUploads));
  // Each repeat answered with the first completion's event.
  for (int i = 0; i < kUploads; ++i) {
    auto first = CompleteUploadSync(*b, absl::StrCat("r", i), Done("late"));
    ASSERT_TRUE(first.ok());
    EXPECT_FALSE(first->appended);
    EXPECT_NE(first->event.upload_completed().upload().completion().etag(), "late");
  }
}

// The reconcilers of several brokers: each overdue intent is claimed by one
// of them at a time, and again by anyone once the claim ran out.
TEST_F(PostgresLedgerTest, ReconcilersClaimEachOverdueIntentOnce) {
  auto a = Open();
  auto b = Open();
  constexpr int kIntents = 200;
  for (int i = 0; i < kIntents; ++i) {
    ASSERT_TRUE(CreateIntentSync(*a, Intent(absl::StrCat("o", i))).ok());
  }
  const absl::Time cutoff = kStart + absl::Hours(1);
  std::vector<std::string> got_a, got_b;
  auto claim = [&](Ledger& broker, std::vector<std::string>& got) {
    for (;;) {
      auto due = broker.ClaimExpiredPending(cutoff, 7, absl::Minutes(1));
      ASSERT_TRUE(due.ok()) << due.status();
      if (due->empty()) return;
      for (const Upload& u : *due) got.push_back(u.upload_id());
    }
  };
  std::thread ta([&] { claim(*a, got_a); });
  std::thread tb([&] { claim(*b, got_b); });
  ta.join();
  tb.join();
  std::set<std::string> all(got_a.begin(), got_a.end());
  for (const auto& id : got_b) EXPECT_TRUE(all.insert(id).second) << id << " claimed twice";
  EXPECT_EQ(all.size(), static_cast<size_t>(kIntents));
  EXPECT_TRUE(b->ClaimExpiredPending(cutoff, 10, absl::Minutes(1))->empty());
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(b->ClaimExpiredPending(cutoff, 10, absl::Minutes(1))->size(), 10u);
}

TEST_F(PostgresLedgerTest, RefusesASchemaNewerThanItKnows) {
  { auto ledger = Open(); }
  Sql("UPDATE ub_schema SET version = 99");
  PostgresLedger::Options options;
  options.dsn = dsn_;
  options.ledger.clock = &clock_;
  auto ledger = PostgresLedger::Create(std::move(options));
  ASSERT_EQ(ledger.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ledger.status().message(), HasSubstr("schema version 99"));
}

TEST_F(PostgresLedgerTest, BrokersStartingTogetherCreateTheSchemaOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      PostgresLedger::Options options;
      options.dsn = dsn_;
      options.ledger.clock = &clock_;
      auto ledger = PostgresLedger::Create(std::move(options));
      EXPECT_TRUE(ledger.ok()) << ledger.status();
      if (ledger.ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
}

TEST_F(PostgresLedgerTest, ThePasswordNeverAppearsInAnError) {
  PostgresLedger::Options options;
  options.dsn = "host=/nonexistent-dir user=ub password=hunter2-secret dbname=x";
  options.ledger.clock = &clock_;
  auto ledger = PostgresLedger::Create(std::move(options));
  ASSERT_EQ(ledger.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(ledger.status().message(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(ledger.status().message(), HasSubstr("PostgreSQL unreachable"));
}

// Connections to this test's database other than the asking one.
int Backends(const std::string& dsn) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  PGresult* r = PQexec(conn, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid()");
  const int n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  PQfinish(conn);
  return n;
}

// A burst of 24 concurrent reads while every read is held up (the table is
// locked): the broker never holds more than max_read_connections read
// connections plus its writer and LISTEN connections, the reads beyond the
// pool wait, and all of them succeed once the lock is gone (#17).
TEST_F(PostgresLedgerTest, ABurstOfReadsNeverOpensMoreThanThePoolSize) {
  PostgresLedger::Options options;
  options.max_read_connections = 3;
  options.read_wait = absl::Seconds(30);
  auto ledger = Open(std::move(options));
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("r")).ok());
  PGconn* locker = PQconnectdb(dsn_.c_str());
  PQclear(PQexec(locker, "BEGIN; LOCK TABLE ub_intents IN ACCESS EXCLUSIVE MODE"));
  std::atomic<int> ok{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 24; ++i) {
    readers.emplace_back([&] {
      auto got = ledger->GetUpload("r");
      EXPECT_TRUE(got.ok()) << got.status();
      if (got.ok()) ++ok;
    });
  }
  int most = 0;
  for (int i = 0; i < 40; ++i) {  // one second of watching
    most = std::max(most, Backends(dsn_) - 1);  // minus the locker
    absl::SleepFor(absl::Milliseconds(25));
  }
  PQclear(PQexec(locker, "COMMIT"));
  for (auto& t : readers) t.join();
  most = std::max(most, Backends(dsn_) - 1);
  PQfinish(locker);
  EXPECT_EQ(ok.load(), 24);
  EXPECT_EQ(most, 3 + PostgresLedger::kOtherConnections);
}

TEST_F(PostgresLedgerTest, AReadThatFindsThePoolBusyTooLongIsUnavailable) {
  PostgresLedger::Options options;
  options.max_read_connections = 1;
  options.read_wait = absl::Milliseconds(300);
  auto ledger = Open(std::move(options));
  PGconn* locker = PQconnectdb(dsn_.c_str());
  PQclear(PQexec(locker, "BEGIN; LOCK TABLE ub_intents IN ACCESS EXCLUSIVE MODE"));
  std::thread holder([&] { (void)ledger->GetUpload("x"); });  // holds the one connection
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  auto refused = ledger->GetUpload("y");
  const absl::Duration waited = absl::Now() - start;
  PQclear(PQexec(locker, "COMMIT"));
  holder.join();
  PQfinish(locker);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(refused.status().message(),
              HasSubstr("all 1 read connections stayed busy for 300ms "
                        "(ledger.postgres.max_read_connections)"));
  EXPECT_GE(waited, absl::Milliseconds(290));
  EXPECT_LT(waited, absl::Seconds(5));
  EXPECT_EQ(ledger->GetUpload("y").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PostgresLedgerTest, APoolSizeOutsideOneTo256IsRefused) {
  for (int size : {0, 257}) {
    PostgresLedger::Options options;
    options.dsn = dsn_;
    options.max_read_connections = size;
    auto ledger = PostgresLedger::Create(std::move(options));
    EXPECT_EQ(ledger.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ledger.status().message(),
                HasSubstr(absl::StrCat("ledger.postgres.max_read_connections must be between "
                                       "1 and 256, got ", size)));
  }
}

// Terminates the backend that is waiting inside COMMIT (wait event
// `wait_event`), once there is one; returns whether one was found in time.
bool TerminateWaitingCommit(const std::string& dsn, const std::string& wait_event) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  bool done = false;
  for (int i = 0; i < 600 && !done; ++i) {
    PGresult* r = PQexec(conn, ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE wait_event = '" + wait_event + "' AND pid <> pg_backend_pid()")
                                   .c_str());
    done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
    PQclear(r);
    if (!done) absl::SleepFor(absl::Milliseconds(50));
  }
  PQfinish(conn);
  return done;
}

// The connection drops while COMMIT runs and the transaction did not commit
// (a deferred trigger holds COMMIT until the backend is terminated): the
// writer learns the outcome from the database and reports a failure, and
// nothing was written; the next attempt gets the next cursor, no gap.
// (The writer looks for the batch's marker row; see pg_writer.h.)
TEST_F(PostgresLedgerTest, ALostCommitThatRolledBackIsReportedAsFailed) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("lost")).ok());
  Sql("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$");
  Sql("CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ub_events "
      "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow()");
  std::thread killer([&] { EXPECT_TRUE(TerminateWaitingCommit(dsn_, "PgSleep")); });
  auto lost = CompleteUploadSync(*ledger, "lost", Done());
  killer.join();
  ASSERT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_THAT(lost.status().message(), HasSubstr("the batch was not written"));
  EXPECT_EQ(ledger->GetUpload("lost")->state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_TRUE(ledger->ReadEvents(0, 10)->empty());
  Sql("DROP TRIGGER slow_commit ON ub_events");
  auto again = CompleteUploadSync(*ledger, "lost", Done());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->appended);
  EXPECT_EQ(again->event.cursor(), 1u);
}

// The connection drops after the commit was written but before its answer
// arrived (COMMIT waits for a synchronous standby that never answers, and
// the backend is terminated there): the writer learns that it committed
// and acknowledges it, once; a repeat appends nothing.
TEST_F(PostgresLedgerTest, ALostCommitThatCommittedIsAcknowledgedOnce) {
  auto ledger = Open();
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("kept")).ok());
  Sql("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
  Sql("SELECT pg_reload_conf()");
  absl::SleepFor(absl::Milliseconds(500));  // backends pick up the reload
  std::thread killer([&] { EXPECT_TRUE(TerminateWaitingCommit(dsn_, "SyncRep")); });
  auto kept = CompleteUploadSync(*ledger, "kept", Done());
  killer.join();
  Sql("ALTER SYSTEM RESET synchronous_standby_names");
  Sql("SELECT pg_reload_conf()");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->appended);
  EXPECT_EQ(kept->event.cursor(), 1u);
  auto repeat = CompleteUploadSync(*ledger, "kept", Done("other"));
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_FALSE(repeat->appended);
  EXPECT_EQ(repeat->event.cursor(), 1u);
  EXPECT_EQ(ledger->ReadEvents(0, 10)->size(), 1u);
}

// A version 2 database (before subscriptions) is migrated to version 3 at
// start, with its uploads and events kept.
TEST_F(PostgresLedgerTest, AVersionTwoDatabaseGainsSubscriptions) {
  {
    auto ledger = Open();
    ASSERT_TRUE(CreateIntentSync(*ledger, Intent("old")).ok());
    ASSERT_TRUE(CompleteUploadSync(*ledger, "old", Done()).ok());
  }
  Sql("DROP TABLE ub_target_leases, ub_sub_deliveries, ub_subscriptions; "
      "UPDATE ub_schema SET version = 2");
  auto ledger = Open();
  EXPECT_EQ(ledger->GetUpload("old")->state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(*ledger->LastCursor(), 1u);
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  const SubscriptionKey key{"app", "orders"};
  ASSERT_EQ(LeaseSync(*ledger, key, "a", {1}, 1)->size(), 1u);
  ASSERT_TRUE(AckSync(*ledger, key, {1}).ok());
  EXPECT_EQ(ledger->GetSubscription(key)->ack_floor, 1u);
  PGconn* conn = PQconnectdb(dsn_.c_str());
  PGresult* r = PQexec(conn, "SELECT max(version) FROM ub_schema");
  EXPECT_EQ(std::string(PQgetvalue(r, 0, 0)), "3");
  PQclear(r);
  PQfinish(conn);
}

// Subscription writes carry the batch's commit marker like every other
// write: an ack whose COMMIT was lost and did not commit (a deferred trigger
// holds COMMIT until the backend is terminated) is reported as failed, not
// as done, and the event is leased again once its lease runs out.
TEST_F(PostgresLedgerTest, AnAckWhoseLostCommitRolledBackIsReportedAsFailed) {
  const SubscriptionKey key{"app", "orders"};
  auto ledger = Open();
  ASSERT_TRUE(CreateSync(*ledger, Spec()).ok());
  AppendEvents(*ledger, 1);
  ASSERT_EQ(LeaseSync(*ledger, key, "a", {1}, 1)->size(), 1u);
  Sql("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$");
  Sql("CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE OR DELETE ON ub_sub_deliveries "
      "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow()");
  std::thread killer([&] { EXPECT_TRUE(TerminateWaitingCommit(dsn_, "PgSleep")); });
  auto lost = AckSync(*ledger, key, {1});
  killer.join();
  ASSERT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_THAT(lost.status().message(), HasSubstr("the batch was not written"));
  Sql("DROP TRIGGER slow_commit ON ub_sub_deliveries");
  clock_.Advance(absl::Seconds(60));
  auto again = LeaseSync(*ledger, key, "b", {}, 1);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ(again->front().attempt, 2);
}

// pg_ctl stop -m fast under a running ledger: writes fail with Unavailable
// and health turns false; once the server is back, both recover without
// reopening the ledger, and nothing acknowledged is lost.
TEST_F(PostgresLedgerTest, RecoversFromADatabaseRestartByItself) {
  auto ledger = Open(absl::Milliseconds(100));
  ASSERT_TRUE(CreateIntentSync(*ledger, Intent("before")).ok());
  ASSERT_TRUE(CompleteUploadSync(*ledger, "before", Done()).ok());
  ASSERT_TRUE(SharedPostgres().Stop("fast").ok());
  absl::Status down = CreateIntentSync(*ledger, Intent("during"));
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (ledger->Healthy() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_FALSE(ledger->Healthy());
  ASSERT_TRUE(SharedPostgres().Start().ok());
  deadline = absl::Now() + absl::Seconds(60);
  absl::Status up;
  do {
    up = CreateIntentSync(*ledger, Intent("after"));
    if (!up.ok()) absl::SleepFor(absl::Milliseconds(100));
  } while (!up.ok() && absl::Now() < deadline);
  ASSERT_TRUE(up.ok()) << up;
  while (!ledger->Healthy() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_TRUE(ledger->Healthy());
  auto before = ledger->GetUpload("before");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->state(), v1::UPLOAD_STATE_COMPLETED);
  auto next = CompleteUploadSync(*ledger, "after", Done());
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->event.cursor(), 2u);
}

}  // namespace
}  // namespace uploadbroker::ledger
