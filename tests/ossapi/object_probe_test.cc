#include "ossapi/object_probe.h"

#include <curl/curl.h>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "osssim/object_store.h"
#include "osssim/simulator.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::ossapi {
namespace {

constexpr char kAk[] = "LTAI5tProbeTestId";
constexpr char kSk[] = "probe-test-secret";

// HeadObject through libcurl against the OSS simulator, which checks the V4
// signature of every request as OSS does.
class OssObjectProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    osssim::SimulatorOptions so;
    so.data_dir = dir_.File("sim");
    so.credentials = {kAk, kSk};
    auto sim = osssim::Simulator::Create(so);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = *std::move(sim);
    bucket_.name = "devbucket";
    bucket_.region = "cn-hangzhou";
    bucket_.scheme = "http";
    bucket_.path_style = true;
    bucket_.api_host = absl::StrCat("127.0.0.1:", sim_->port());
  }

  std::unique_ptr<credentials::CredentialProvider> Creds(const std::string& secret) {
    config::CredentialSource source;
    source.access_key_id_file = dir_.WriteFile("ak", kAk);
    source.access_key_secret_file = dir_.WriteFile("sk-" + secret, secret);
    auto creds = credentials::CredentialProvider::Create(source, &clock_);
    EXPECT_TRUE(creds.ok()) << creds.status();
    return *std::move(creds);
  }

  testing::TempDir dir_;
  common::RealClock clock_;
  std::unique_ptr<osssim::Simulator> sim_;
  config::Bucket bucket_;
};

TEST_F(OssObjectProbeTest, ReportsWhatTheStoredObjectHolds) {
  const std::string key = "uploads/\xe5\x9b\xbe\xe7\x89\x87 1+1.png";  // Unicode, space, plus
  absl::Time before = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  auto stored = osssim::ObjectStore(dir_.File("sim")).Put("devbucket", key, "png bytes", "image/png", {});
  ASSERT_TRUE(stored.ok()) << stored.status();
  auto creds = Creds(kSk);
  OssObjectProbe probe(*creds, clock_);
  absl::StatusOr<ObjectFacts> facts = probe.Head(bucket_, key);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_EQ(facts->size, 9);
  EXPECT_EQ(absl::StrCat("\"", facts->etag, "\""), stored->etag);
  EXPECT_EQ(facts->content_type, "image/png");
  EXPECT_EQ(facts->crc64, stored->crc64);
  EXPECT_EQ(facts->content_md5, stored->content_md5);
  EXPECT_FALSE(facts->request_id.empty());
  EXPECT_GE(facts->last_modified, before);
  EXPECT_LE(facts->last_modified, absl::Now());
}

TEST_F(OssObjectProbeTest, AMissingObjectIsNotFound) {
  auto creds = Creds(kSk);
  OssObjectProbe probe(*creds, clock_);
  EXPECT_EQ(probe.Head(bucket_, "uploads/none").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(OssObjectProbeTest, AnyOtherAnswerSaysNothingAboutTheObject) {
  ASSERT_TRUE(osssim::ObjectStore(dir_.File("sim")).Put("devbucket", "k", "x", "text/plain", {}).ok());
  auto wrong = Creds("not-the-secret");
  OssObjectProbe bad_signature(*wrong, clock_);
  absl::Status st = bad_signature.Head(bucket_, "k").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("HTTP 403"), std::string::npos) << st;

  auto creds = Creds(kSk);
  OssObjectProbe probe(*creds, clock_, absl::Milliseconds(500));
  sim_->Shutdown();
  st = probe.Head(bucket_, "k").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
}

TEST_F(OssObjectProbeTest, ReusesItsConnections) {
  ASSERT_TRUE(osssim::ObjectStore(dir_.File("sim")).Put("devbucket", "k", "x", "text/plain", {}).ok());
  auto creds = Creds(kSk);
  OssObjectProbe probe(*creds, clock_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(probe.Head(bucket_, "k").ok());
    ASSERT_EQ(probe.Head(bucket_, "missing").status().code(), absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(probe.connections_opened(), 1) << "ten HEADs in a row should share one connection";
}

TEST(ParseHttpDate, ReadsImfFixdate) {
  absl::StatusOr<absl::Time> t = ParseHttpDate("Tue, 01 Dec 2026 17:20:05 GMT");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(absl::FormatTime("%Y-%m-%dT%H:%M:%S", *t, absl::UTCTimeZone()), "2026-12-01T17:20:05");
  EXPECT_FALSE(ParseHttpDate("yesterday").ok());
}

}  // namespace
}  // namespace uploadbroker::ossapi
