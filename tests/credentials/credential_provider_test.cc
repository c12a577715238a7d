#include "credentials/credential_provider.h"

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::credentials {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

std::string Sts(const std::string& id, absl::Time expiration) {
  return absl::StrCat(R"({"AccessKeyId":")", id, R"(","AccessKeySecret":"secret-)", id,
                      R"(","SecurityToken":"token-)", id, R"(","Expiration":")",
                      absl::FormatTime(absl::RFC3339_sec, expiration, absl::UTCTimeZone()), R"("})");
}

class CredentialProviderTest : public ::testing::Test {
 protected:
  // Rewrites a credential file and moves its mtime on, so the change is
  // seen whatever the file system's timestamp granularity.
  void Rewrite(const std::string& name, const std::string& content) {
    std::string path = dir_.WriteFile(name, content);
    ++generation_;
    std::filesystem::last_write_time(
        path, std::filesystem::file_time_type::clock::now() + std::chrono::seconds(generation_));
  }

  std::unique_ptr<CredentialProvider> Static() {
    config::CredentialSource src;
    src.access_key_id_file = dir_.WriteFile("id", "LTAI-one\n");
    src.access_key_secret_file = dir_.WriteFile("secret", "secret-one\n");
    auto p = CredentialProvider::Create(src, &clock_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  std::unique_ptr<CredentialProvider> FromSts(absl::Time expiration) {
    config::CredentialSource src;
    src.sts_file = dir_.WriteFile("sts.json", Sts("STS.one", expiration));
    auto p = CredentialProvider::Create(src, &clock_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_{kNow};
  int generation_ = 0;
};

TEST_F(CredentialProviderTest, StaticKeyIsReadTrimmed) {
  auto p = Static();
  absl::StatusOr<policy::Credential> c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "LTAI-one");
  EXPECT_EQ(c->access_key_secret, "secret-one");
  EXPECT_EQ(c->security_token, "");
}

TEST_F(CredentialProviderTest, RotatedKeyIsUsedAfterTheNextCheck) {
  auto p = Static();
  Rewrite("id", "LTAI-two\n");
  Rewrite("secret", "secret-two\n");
  // Files are looked at no more than once a second.
  EXPECT_EQ(p->Get()->access_key_id, "LTAI-one");
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<policy::Credential> c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "LTAI-two");
  EXPECT_EQ(c->access_key_secret, "secret-two");
}

TEST_F(CredentialProviderTest, RefreshedStsFileTakesEffectWithoutARestart) {
  auto p = FromSts(kNow + absl::Hours(1));
  Rewrite("sts.json", Sts("STS.two", kNow + absl::Hours(2)));
  clock_.Advance(absl::Seconds(2));
  absl::StatusOr<policy::Credential> c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "STS.two");
  EXPECT_EQ(c->security_token, "token-STS.two");
  EXPECT_EQ(c->expiration, kNow + absl::Hours(2));
}

TEST_F(CredentialProviderTest, HalfWrittenFileKeepsTheLastGoodCredential) {
  auto p = FromSts(kNow + absl::Hours(1));
  std::string full = Sts("STS.two", kNow + absl::Hours(2));
  Rewrite("sts.json", full.substr(0, full.size() / 2));
  clock_.Advance(absl::Seconds(2));
  absl::StatusOr<policy::Credential> c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "STS.one");
  // Once the writer finishes, the new one is used.
  Rewrite("sts.json", full);
  clock_.Advance(absl::Seconds(2));
  c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "STS.two");
}

TEST_F(CredentialProviderTest, ExpiredStsIsUnavailableUntilTheFileIsRefreshed) {
  auto p = FromSts(kNow + absl::Minutes(5));
  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<policy::Credential> c = p->Get();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(c.status().message(), "the STS credential has expired; refresh the credential file");
  Rewrite("sts.json", Sts("STS.two", kNow + absl::Hours(1)));
  clock_.Advance(absl::Seconds(1));
  c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "STS.two");
}

TEST_F(CredentialProviderTest, BadFilesAreErrorsNamingTheFileNotTheSecret) {
  config::CredentialSource missing;
  missing.access_key_id_file = dir_.File("absent");
  missing.access_key_secret_file = dir_.WriteFile("secret", "secret-one");
  auto p = CredentialProvider::Create(missing, &clock_);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(p.status().message(), absl::StrCat(dir_.File("absent"), ": cannot read credential file"));

  config::CredentialSource empty;
  empty.access_key_id_file = dir_.WriteFile("id", "LTAI-one");
  empty.access_key_secret_file = dir_.WriteFile("empty", "  \n");
  p = CredentialProvider::Create(empty, &clock_);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(), absl::StrCat(dir_.File("empty"), ": file is empty"));

  config::CredentialSource sts;
  sts.sts_file = dir_.WriteFile("sts.json", R"({"AccessKeyId":"STS.x","AccessKeySecret":"hush"})");
  p = CredentialProvider::Create(sts, &clock_);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(), absl::StrCat(dir_.File("sts.json"), ": SecurityToken: missing or not a string"));
  EXPECT_THAT(p.status().ToString(), Not(HasSubstr("hush")));
}

}  // namespace
}  // namespace uploadbroker::credentials
