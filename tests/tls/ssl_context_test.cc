// ReloadingSslContext on a fake clock: the files are looked at once per
// check interval, a renewed pair is picked up at the next check, and a pair
// that does not load keeps the last good context.
#include "tls/ssl_context.h"

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certs.h"

namespace uploadbroker::tls {
namespace {

class SslContextTest : public ::testing::Test {
 protected:
  void Replace(const testing::CertFiles& with) {
    std::filesystem::copy_file(with.key, key_ + ".new");
    std::filesystem::copy_file(with.cert, cert_ + ".new");
    std::filesystem::rename(key_ + ".new", key_);
    std::filesystem::rename(cert_ + ".new", cert_);
  }

  testing::TempDir dir_;
  testing::TestCa ca_{dir_, "ca"};
  testing::CertFiles first_ = ca_.Issue("first", "IP:127.0.0.1", 0x1001, false);
  std::string cert_ = dir_.File("served.pem");
  std::string key_ = dir_.File("served.key");
  testing::FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
};

TEST_F(SslContextTest, ARenewedPairIsServedFromTheNextCheckOn) {
  std::filesystem::copy_file(first_.cert, cert_);
  std::filesystem::copy_file(first_.key, key_);
  auto ctx = ReloadingSslContext::Create("tls.http", cert_, key_, absl::Minutes(1), &clock_);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  auto before = (*ctx)->Current();
  Replace(ca_.Issue("renewed", "IP:127.0.0.1", 0x2002, false));
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ((*ctx)->Current(), before);  // not looked at before the interval
  clock_.Advance(absl::Seconds(1));
  auto after = (*ctx)->Current();
  EXPECT_NE(after, before);
  EXPECT_EQ((*ctx)->Current(), after);  // nothing changed since
}

TEST_F(SslContextTest, APairThatDoesNotLoadKeepsTheLastGoodOne) {
  std::filesystem::copy_file(first_.cert, cert_);
  std::filesystem::copy_file(first_.key, key_);
  auto ctx = ReloadingSslContext::Create("tls.http", cert_, key_, absl::Minutes(1), &clock_);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  auto before = (*ctx)->Current();
  testing::CertFiles other = ca_.Issue("other", "IP:127.0.0.1", 0x3003, false);
  std::filesystem::copy_file(other.key, key_ + ".new");
  std::filesystem::rename(key_ + ".new", key_);
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ((*ctx)->Current(), before);  // the key belongs to another certificate
}

}  // namespace
}  // namespace uploadbroker::tls
