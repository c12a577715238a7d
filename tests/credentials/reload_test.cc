// CredentialProvider's promise (credentials/credential_provider.h): the
// files are re-read when they change, at most once per second, and a
// half-written or broken file keeps the last good credential in use.
#include "credentials/credential_provider.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "absl/time/time.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::credentials {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1760000000);

class CredentialReloadTest : public ::testing::Test {
 protected:
  // Writes `content` and gives the file a modification time of its own, one
  // second after the previous write: a rotation several times within one
  // kernel timestamp tick would otherwise look like no change at all.
  void Write(const std::string& name, const std::string& content) {
    dir_.WriteFile(name, content);
    ++mtime_;
    timespec times[2] = {{mtime_, 0}, {mtime_, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, dir_.File(name).c_str(), times, 0), 0);
  }

  static std::string Sts(const std::string& id, absl::Time expiration) {
    return "{\"AccessKeyId\": \"" + id + "\", \"AccessKeySecret\": \"secret-" + id +
           "\", \"SecurityToken\": \"token-" + id + "\", \"Expiration\": \"" +
           absl::FormatTime(absl::RFC3339_sec, expiration, absl::UTCTimeZone()) + "\"}";
  }

  std::unique_ptr<CredentialProvider> AccessKeyProvider() {
    config::CredentialSource source;
    source.access_key_id_file = dir_.File("ak");
    source.access_key_secret_file = dir_.File("sk");
    auto p = CredentialProvider::Create(source, &clock_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  std::unique_ptr<CredentialProvider> StsProvider() {
    config::CredentialSource source;
    source.sts_file = dir_.File("sts.json");
    auto p = CredentialProvider::Create(source, &clock_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  std::string IdNow(CredentialProvider& p) {
    auto c = p.Get();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->access_key_id : "";
  }

  testing::TempDir dir_;
  testing::FakeClock clock_{kStart};
  time_t mtime_ = 1700000000;
};

TEST_F(CredentialReloadTest, RotatedAccessKeyIsUsedFromTheNextCheck) {
  Write("ak", "LTAI-old\n");
  Write("sk", "secret-old\n");
  auto p = AccessKeyProvider();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(IdNow(*p), "LTAI-old");
  Write("ak", "LTAI-new\n");
  Write("sk", "secret-new\n");
  // The files are looked at no more than once a second.
  clock_.Advance(absl::Milliseconds(999));
  EXPECT_EQ(IdNow(*p), "LTAI-old");
  clock_.Advance(absl::Milliseconds(1));
  auto c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "LTAI-new");
  EXPECT_EQ(c->access_key_secret, "secret-new");
}

TEST_F(CredentialReloadTest, EmptiedSecretFileKeepsTheLastGoodPair) {
  Write("ak", "LTAI-old");
  Write("sk", "secret-old");
  auto p = AccessKeyProvider();
  ASSERT_NE(p, nullptr);
  // A writer that truncated the file and has not written it yet.
  Write("sk", "");
  clock_.Advance(absl::Seconds(1));
  auto c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "LTAI-old");
  EXPECT_EQ(c->access_key_secret, "secret-old");
  // Once the write completes, the new secret is used.
  Write("sk", "secret-new");
  clock_.Advance(absl::Seconds(1));
  c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_secret, "secret-new");
}

TEST_F(CredentialReloadTest, HalfWrittenStsFileKeepsTheLastGoodCredential) {
  Write("sts.json", Sts("STS.A", kStart + absl::Hours(1)));
  auto p = StsProvider();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(IdNow(*p), "STS.A");
  const std::string b = Sts("STS.B", kStart + absl::Hours(2));
  Write("sts.json", b.substr(0, b.size() / 2));  // the sidecar is mid-write
  clock_.Advance(absl::Seconds(1));
  auto c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "STS.A");
  EXPECT_EQ(c->security_token, "token-STS.A");
  // The broken file is read again at the next check, and once complete it
  // replaces the old credential.
  Write("sts.json", b);
  clock_.Advance(absl::Seconds(1));
  c = p->Get();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->access_key_id, "STS.B");
  EXPECT_EQ(c->security_token, "token-STS.B");
  EXPECT_EQ(c->expiration, kStart + absl::Hours(2));
}

TEST_F(CredentialReloadTest, RemovedFileKeepsTheLastGoodCredential) {
  Write("sts.json", Sts("STS.A", kStart + absl::Hours(1)));
  auto p = StsProvider();
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(std::remove(dir_.File("sts.json").c_str()), 0);  // mid-rename by a sidecar
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(IdNow(*p), "STS.A");
  Write("sts.json", Sts("STS.B", kStart + absl::Hours(2)));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(IdNow(*p), "STS.B");
}

TEST_F(CredentialReloadTest, ExpiredStsIsUnavailableUntilTheFileIsRefreshed) {
  Write("sts.json", Sts("STS.A", kStart + absl::Minutes(5)));
  auto p = StsProvider();
  ASSERT_NE(p, nullptr);
  clock_.Advance(absl::Minutes(5));
  auto c = p->Get();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_EQ(std::string(c.status().message()),
            "the STS credential has expired; refresh the credential file");
  // A refresh that is itself already expired does not help.
  Write("sts.json", Sts("STS.B", kStart + absl::Minutes(4)));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(p->Get().status().code(), absl::StatusCode::kUnavailable);
  Write("sts.json", Sts("STS.C", kStart + absl::Hours(1)));
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(IdNow(*p), "STS.C");
}

}  // namespace
}  // namespace uploadbroker::credentials
