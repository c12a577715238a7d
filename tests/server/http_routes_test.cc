// The HTTP surface's readiness and health answers, against a fake ledger.
#include "server/http_routes.h"

#include <atomic>
#include <memory>
#include <optional>

#include "callback/verifier.h"
#include "gtest/gtest.h"
#include "metrics/registry.h"
#include "tests/testing/fake_ledger.h"

namespace uploadbroker::server {
namespace {

class HttpRoutesTest : public ::testing::Test {
 protected:
  HttpRoutesTest() {
    auto verifier = callback::Verifier::Create("/oss/callback", {});
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    verifier_.emplace(*std::move(verifier));
    callbacks_ = std::make_unique<ingest::CallbackHandler>(*verifier_, ledger_, metrics_,
                                                           std::map<std::string, std::string>{},
                                                           /*confirmer=*/nullptr);
    routes_ = MakeHttpRoutes(*callbacks_, ledger_, metrics_, draining_);
  }

  // The routes answer GETs on the calling thread.
  http::Response Get(const std::string& path) {
    http::Request req;
    req.method = "GET";
    req.target = path;
    req.path_raw = path;
    std::optional<http::Response> answer;
    routes_(std::move(req), [&answer](http::Response r) { answer = std::move(r); });
    EXPECT_TRUE(answer.has_value()) << path;
    return answer.value_or(http::Response{});
  }

  testing::FakeLedger ledger_;
  metrics::Registry metrics_;
  std::atomic<bool> draining_{false};
  std::optional<callback::Verifier> verifier_;
  std::unique_ptr<ingest::CallbackHandler> callbacks_;
  http::Handler routes_;
};

TEST_F(HttpRoutesTest, ReadyWhileTheLedgerCommitsAndNotDraining) {
  http::Response r = Get("/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"ready"})");
}

TEST_F(HttpRoutesTest, DrainingIsNotReadyButStillAlive) {
  draining_ = true;
  http::Response r = Get("/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"status":"not ready"})");
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(HttpRoutesTest, LedgerThatCannotCommitIsNotReadyUntilItRecovers) {
  ledger_.SetHealthy(false);
  EXPECT_EQ(Get("/readyz").status, 503);
  EXPECT_EQ(Get("/healthz").status, 200);
  ledger_.SetHealthy(true);
  EXPECT_EQ(Get("/readyz").status, 200);
}

}  // namespace
}  // namespace uploadbroker::server
