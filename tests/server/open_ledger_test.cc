// OpenLedger reads the PostgreSQL connection string from a file the config
// names: hostile or broken files get a precise error naming the config
// field and file, and the password never appears in it.
#include "server/open_ledger.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class OpenLedgerTest : public ::testing::Test {
 protected:
  absl::Status OpenWithDsn(const std::string& content) {
    config_.postgres_dsn_file = dir_.WriteFile("dsn", content);
    return OpenLedger(config_, clock_).status();
  }

  testing::TempDir dir_;
  testing::FakeClock clock_{absl::FromUnixSeconds(1'700'000'000)};
  config::Config config_ = [] {
    config::Config c;
    c.source = "broker.yaml";
    return c;
  }();
};

TEST_F(OpenLedgerTest, AMissingDsnFileNamesTheFieldAndFile) {
  config_.postgres_dsn_file = dir_.File("absent");
  absl::Status s = OpenLedger(config_, clock_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("broker.yaml: ledger.postgres.dsn_file: cannot read"));
  EXPECT_THAT(s.message(), HasSubstr(dir_.File("absent")));
}

TEST_F(OpenLedgerTest, AnEmptyDsnFileIsRefused) {
  absl::Status s = OpenWithDsn(" \n\t\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("ledger.postgres.dsn_file: "));
  EXPECT_THAT(s.message(), HasSubstr("is empty"));
}

TEST_F(OpenLedgerTest, AHugeDsnFileIsRefusedWithoutReadingItAll) {
  absl::Status s = OpenWithDsn(std::string(64 * 1024 + 1, 'h'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("is larger than 64 KiB"));
  EXPECT_THAT(s.message(), Not(HasSubstr("hhhh")));
}

TEST_F(OpenLedgerTest, AnUnreachableDatabaseIsUnavailableAndThePasswordStaysSecret) {
  absl::Status s = OpenWithDsn("host=/nonexistent-dir user=ub password=s3cret-pw dbname=x\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("broker.yaml: ledger.postgres: PostgreSQL unreachable"));
  EXPECT_THAT(s.message(), Not(HasSubstr("s3cret-pw")));
}

TEST_F(OpenLedgerTest, MalformedOrHostileConnectionStringsAreRefusedNotExecuted) {
  for (const std::string dsn :
       {std::string("host='unterminated password=s3cret-pw"),
        std::string("postgresql://ub:s3cret-pw@/db?host=/nonexistent&sslmode=bogus"),
        std::string("host=/nonexistent dbname=x'; DROP TABLE ub_intents; -- password=s3cret-pw"),
        std::string("host=/nonexistent\0password=s3cret-pw", 37),
        std::string("\xff\xfe password=s3cret-pw")}) {
    absl::Status s = OpenWithDsn(dsn);
    EXPECT_FALSE(s.ok()) << dsn;
    EXPECT_THAT(s.message(), HasSubstr("ledger.postgres")) << dsn;
    EXPECT_THAT(s.message(), Not(HasSubstr("s3cret-pw"))) << dsn;
  }
}

// libpq's own parse error quotes the bad token, i.e. the password here: the
// broker names the kind of mistake and nothing of the string (#17).
TEST_F(OpenLedgerTest, ADsnLibpqCannotParseIsRefusedWithoutQuotingIt) {
  absl::Status s = OpenWithDsn("postgresql://u:s3cr%zzet@host/db");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("broker.yaml: ledger.postgres: PostgreSQL: the connection "
                                     "string cannot be parsed (invalid percent-encoded token)"));
  EXPECT_THAT(s.message(), Not(HasSubstr("s3cr")));
  EXPECT_THAT(s.message(), Not(HasSubstr("zzet")));
  s = OpenWithDsn("password=s3cret host=/nonexistent dbname=x");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), Not(HasSubstr("s3cret")));
  s = OpenWithDsn("host=/nonexistent password='s3cret");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("(unterminated quoted string in connection info string)"));
  EXPECT_THAT(s.message(), Not(HasSubstr("s3cret")));
}

TEST_F(OpenLedgerTest, WithoutPostgresTheSqliteLedgerOpensAtItsPath) {
  config_.ledger_path = dir_.File("ledger.db");
  auto ledger = OpenLedger(config_, clock_);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  EXPECT_TRUE((*ledger)->Healthy());
  EXPECT_EQ(LedgerName(config_), "sqlite " + dir_.File("ledger.db"));
}

}  // namespace
}  // namespace uploadbroker::server
