// libpq's notices reach the logger (so --log-format json stays one JSON
// object per line), escaped, at warn for warnings and info otherwise.
#include <memory>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ledger/pg_conn.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/testing/postgres_server.h"

namespace uploadbroker::ledger {
namespace {

using ::testing::HasSubstr;

TEST(PgNotices, GoThroughTheLoggerEscaped) {
  testing::PostgresServer pg;
  ASSERT_TRUE(pg.Start().ok());
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_pattern("[%l] %v");
  spdlog::set_default_logger(logger);
  {
    auto conn = PgConn::Connect(pg.Dsn());
    ASSERT_TRUE(conn.ok()) << conn.status();
    ASSERT_TRUE((*conn)->Exec("DO $$ BEGIN RAISE NOTICE 'first%second', chr(10); END $$", "notice").ok());
    ASSERT_TRUE((*conn)->Exec("DO $$ BEGIN RAISE WARNING 'careful'; END $$", "warning").ok());
  }
  spdlog::set_default_logger(previous);
  EXPECT_THAT(log.str(), HasSubstr("[info] PostgreSQL: NOTICE:  first\\x0asecond\n"));
  EXPECT_THAT(log.str(), HasSubstr("[warning] PostgreSQL: WARNING:  careful\n"));
}

}  // namespace
}  // namespace uploadbroker::ledger
