// Fetching a trusted development key: only plain 200 answers count; a
// redirect is refused, not followed.
#include "ingest/trusted_keys.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/server.h"
#include "tests/callback/test_signer.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::ingest {
namespace {

using ::testing::HasSubstr;

class KeyServer {
 public:
  explicit KeyServer(std::string pem) {
    auto s = http::Server::Create({}, [pem, this](http::Request req, http::Responder respond) {
      http::Response r;
      if (req.path_raw == "/redirect") {
        r.status = 302;
        r.headers.push_back({"Location", absl::StrCat("http://127.0.0.1:", port_, "/key.pem")});
      } else {
        r.content_type = "application/x-pem-file";
        r.body = pem;
      }
      respond(std::move(r));
    });
    UB_CHECK(s.ok());
    server_ = *std::move(s);
    port_ = server_->port();
  }
  std::string Url(const std::string& path) const { return absl::StrCat("http://127.0.0.1:", port_, path); }

 private:
  std::unique_ptr<http::Server> server_;
  int port_ = 0;
};

TEST(TrustedKeys, FetchesAKeyFromAnExplicitUrl) {
  callback::TestSigner signer;
  KeyServer ks(signer.PublicPem());
  config::Config cfg;
  cfg.trusted_key_url = ks.Url("/key.pem");
  auto keys = LoadTrustedKeys(cfg);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].url, cfg.trusted_key_url);
  EXPECT_EQ((*keys)[0].key.SpkiSha256Hex(), signer.Public().SpkiSha256Hex());
}

TEST(TrustedKeys, RefusesARedirectingUrl) {
  callback::TestSigner signer;
  KeyServer ks(signer.PublicPem());
  config::Config cfg;
  cfg.source = "broker.yaml";
  cfg.trusted_key_url = ks.Url("/redirect");
  auto keys = LoadTrustedKeys(cfg);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(keys.status().message(), HasSubstr("callback.trusted_key_url"));
  EXPECT_THAT(keys.status().message(), HasSubstr("redirects are not followed"));
}

TEST(TrustedKeys, NothingConfiguredMeansOnlyThePinnedKey) {
  config::Config cfg;
  auto keys = LoadTrustedKeys(cfg);
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());
  cfg.trusted_key_file = "/x.pem";
  EXPECT_FALSE(LoadTrustedKeys(cfg).ok());
}

TEST(TrustedKeys, ABadPemFailsNamingTheField) {
  testing::TempDir dir;
  config::Config cfg;
  cfg.source = "broker.yaml";
  cfg.trusted_key_url = "http://127.0.0.1:9/k.pem";
  cfg.trusted_key_file = dir.WriteFile("k.pem", "not a key");
  auto keys = LoadTrustedKeys(cfg);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(keys.status().message(), HasSubstr("callback.trusted_key_file"));
}

}  // namespace
}  // namespace uploadbroker::ingest
