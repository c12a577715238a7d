#include "auth/authenticator.h"

#include <string>
#include <vector>

#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uploadbroker::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

config::Caller Configured(const std::string& name, const std::string& key) {
  config::Caller c;
  c.name = name;
  c.api_key_sha256 = common::HexEncode(common::Sha256(key));
  c.buckets = {"photos"};
  c.key_prefixes = {"uploads/" + name + "/"};
  c.max_size = 1000;
  c.content_types = {"image/png"};
  c.max_ttl = absl::Minutes(5);
  return c;
}

TEST(AuthenticatorTest, BearerKeyMapsToTheCallersIdentityAndScope) {
  Authenticator auth({Configured("app", "key-app"), Configured("other", "key-other")});
  absl::StatusOr<Principal> id = auth.Authenticate("Bearer key-app");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ((*id)->name, "app");
  EXPECT_THAT((*id)->scope.buckets, ElementsAre("photos"));
  EXPECT_THAT((*id)->scope.key_prefixes, ElementsAre("uploads/app/"));
  EXPECT_EQ((*id)->scope.max_size, 1000);
  EXPECT_THAT((*id)->scope.content_types, ElementsAre("image/png"));
  EXPECT_EQ((*id)->scope.max_ttl, absl::Minutes(5));
}

TEST(AuthenticatorTest, SchemeIsCaseInsensitiveAndKeyIsTrimmed) {
  Authenticator auth({Configured("app", "key-app")});
  absl::StatusOr<Principal> id = auth.Authenticate("bEaReR  key-app ");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ((*id)->name, "app");
}

TEST(AuthenticatorTest, MissingHeaderIsUnauthenticated) {
  Authenticator auth({Configured("app", "key-app")});
  absl::StatusOr<Principal> id = auth.Authenticate("");
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(id.status().message(), "missing 'authorization: Bearer <api key>' metadata");
}

TEST(AuthenticatorTest, OtherSchemeIsUnauthenticated) {
  Authenticator auth({Configured("app", "key-app")});
  for (const char* header : {"Basic a2V5LWFwcA==", "Bearer", "Bearer "}) {
    absl::StatusOr<Principal> id = auth.Authenticate(header);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated) << header;
    EXPECT_EQ(id.status().message(), "authorization metadata must be 'Bearer <api key>'") << header;
  }
}

TEST(AuthenticatorTest, UnknownKeyIsUnauthenticatedWithoutEchoingIt) {
  Authenticator auth({Configured("app", "key-app")});
  absl::StatusOr<Principal> id = auth.Authenticate("Bearer secret-guess");
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(id.status().message(), "unknown API key");
  EXPECT_THAT(id.status().ToString(), Not(HasSubstr("secret-guess")));
}

TEST(AuthenticatorTest, DoesNotReferenceTheConfigAfterConstruction) {
  std::vector<config::Caller> callers = {Configured("app", "key-app")};
  Authenticator auth(callers);
  callers.clear();
  callers.shrink_to_fit();
  absl::StatusOr<Principal> id = auth.Authenticate("Bearer key-app");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ((*id)->name, "app");
}

// Mutual TLS: a verified client certificate's URI SAN names the caller.
TEST(AuthenticatorTest, ClientCertificateUriMapsToTheSameIdentityAsTheApiKey) {
  config::Caller app = Configured("app", "key-app");
  app.client_cert_uri = "spiffe://example.org/app";
  config::Caller cert_only = Configured("cert-only", "unused");
  cert_only.api_key_sha256.clear();
  cert_only.client_cert_uri = "spiffe://example.org/cert-only";
  Authenticator auth({app, cert_only});
  absl::StatusOr<Principal> by_key = auth.Authenticate("Bearer key-app");
  absl::StatusOr<Principal> by_cert =
      auth.AuthenticateCertificate({"https://unrelated.example", "spiffe://example.org/app"});
  ASSERT_TRUE(by_key.ok() && by_cert.ok()) << by_cert.status();
  EXPECT_EQ(by_key->identity.get(), by_cert->identity.get());
  EXPECT_EQ((*by_cert)->scope.key_prefixes, std::vector<std::string>{"uploads/app/"});
  absl::StatusOr<Principal> only = auth.AuthenticateCertificate({"spiffe://example.org/cert-only"});
  ASSERT_TRUE(only.ok()) << only.status();
  EXPECT_EQ((*only)->name, "cert-only");
}

TEST(AuthenticatorTest, UnknownCertificateUriIsUnauthenticated) {
  config::Caller app = Configured("app", "key-app");
  app.client_cert_uri = "spiffe://example.org/app";
  Authenticator auth({app});
  for (std::vector<std::string> uris :
       {std::vector<std::string>{}, std::vector<std::string>{"spiffe://example.org/other"},
        std::vector<std::string>{"spiffe://example.org/app/"}}) {
    absl::StatusOr<Principal> id = auth.AuthenticateCertificate(uris);
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(id.status().message(), HasSubstr("no client certificate URI names a caller"));
  }
}

TEST(AuthenticatorTest, CertificateNamingTwoCallersIsRefused) {
  config::Caller a = Configured("a", "key-a");
  a.client_cert_uri = "spiffe://example.org/a";
  config::Caller b = Configured("b", "key-b");
  b.client_cert_uri = "spiffe://example.org/b";
  Authenticator auth({a, b});
  absl::StatusOr<Principal> id =
      auth.AuthenticateCertificate({"spiffe://example.org/a", "spiffe://example.org/b"});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(id.status().message(), HasSubstr("more than one caller"));
}

TEST(AuthenticatorTest, CallerWithoutApiKeyCannotBeReachedByAnEmptyKey) {
  config::Caller cert_only = Configured("cert-only", "unused");
  cert_only.api_key_sha256.clear();
  cert_only.client_cert_uri = "spiffe://example.org/cert-only";
  Authenticator auth({cert_only});
  EXPECT_FALSE(auth.Authenticate("Bearer x").ok());
  EXPECT_FALSE(auth.Authenticate("Bearer  ").ok());
}

TEST(AuthenticatorTest, EveryFailureIsReportedWithItsReasonAndPeer) {
  std::vector<std::pair<std::string, std::string>> seen;
  Authenticator auth({Configured("app", "key-app")},
                     [&seen](absl::string_view reason, absl::string_view peer) {
                       seen.emplace_back(reason, peer);
                     });
  EXPECT_FALSE(auth.Authenticate("", "ipv4:10.0.0.1:1").ok());
  EXPECT_FALSE(auth.Authenticate("Basic abc", "ipv4:10.0.0.1:2").ok());
  EXPECT_FALSE(auth.Authenticate("Bearer nope", "ipv4:10.0.0.1:3").ok());
  EXPECT_TRUE(auth.Authenticate("Bearer key-app", "ipv4:10.0.0.1:4").ok());
  EXPECT_THAT(seen, ElementsAre(std::make_pair("missing", "ipv4:10.0.0.1:1"),
                                std::make_pair("malformed", "ipv4:10.0.0.1:2"),
                                std::make_pair("unknown_key", "ipv4:10.0.0.1:3")));
}

TEST(AuthenticatorTest, ReloadReplacesKeysAndKeepsEarlierIdentitiesAlive) {
  Authenticator auth({Configured("app", "key-old")});
  absl::StatusOr<Principal> before = auth.Authenticate("Bearer key-old");
  ASSERT_TRUE(before.ok());
  config::Caller renamed = Configured("app", "key-new");
  renamed.max_size = 2000;
  auth.Reload({renamed});
  EXPECT_EQ(auth.Authenticate("Bearer key-old").status().code(),
            absl::StatusCode::kUnauthenticated);
  absl::StatusOr<Principal> after = auth.Authenticate("Bearer key-new");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)->scope.max_size, 2000);
  // An identity handed out before the reload is still valid (a stream that
  // authenticated earlier keeps its scope).
  EXPECT_EQ((*before)->name, "app");
  EXPECT_EQ((*before)->scope.max_size, 1000);
}

TEST(AuthenticatorTest, RecheckAfterReloadEndsRevokedKeysAndMovesTheRestToTheNewCallers) {
  Authenticator auth({Configured("app", "key-app"), Configured("other", "key-other")});
  absl::StatusOr<Principal> app = auth.Authenticate("Bearer key-app");
  absl::StatusOr<Principal> other = auth.Authenticate("Bearer key-other");
  ASSERT_TRUE(app.ok() && other.ok());
  // Nothing reloaded: the same principal.
  absl::StatusOr<Principal> same = auth.Recheck(*app);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->identity.get(), app->identity.get());

  config::Caller wider = Configured("other", "key-other");
  wider.max_size = 5000;
  auth.Reload({wider});  // "app" removed
  uint64_t checked = 0;
  absl::StatusOr<Principal> gone = auth.Recheck(*app, &checked);
  EXPECT_EQ(checked, auth.generation());
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(gone.status().message(), HasSubstr("caller 'app'"));
  EXPECT_THAT(gone.status().message(), Not(HasSubstr(common::HexEncode(common::Sha256("key-app")))));
  absl::StatusOr<Principal> kept = auth.Recheck(*other);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ((*kept)->scope.max_size, 5000);
  EXPECT_EQ(kept->generation, auth.generation());

  auth.Reload({Configured("other", "key-rotated")});
  EXPECT_EQ(auth.Recheck(*kept).status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorTest, RecheckOfACertificateEndsWhenTheUriIsUnmappedOrAmbiguous) {
  config::Caller a = Configured("a", "key-a");
  a.client_cert_uri = "spiffe://example.org/a";
  Authenticator auth({a});
  absl::StatusOr<Principal> by_cert = auth.AuthenticateCertificate({"spiffe://example.org/a"});
  ASSERT_TRUE(by_cert.ok());
  auth.Reload({a});
  EXPECT_TRUE(auth.Recheck(*by_cert).ok());

  config::Caller b = Configured("b", "key-b");
  b.client_cert_uri = "spiffe://example.org/a";  // the same URI now names two callers
  auth.Reload({a, b});
  absl::StatusOr<Principal> ambiguous = auth.Recheck(*by_cert);
  EXPECT_EQ(ambiguous.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(ambiguous.status().message(), HasSubstr("more than one caller"));

  a.client_cert_uri.clear();
  auth.Reload({a});
  absl::StatusOr<Principal> unmapped = auth.Recheck(*by_cert);
  EXPECT_EQ(unmapped.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(unmapped.status().message(), HasSubstr("no longer names a caller"));
  // The key alone never stands in for the certificate, nor the reverse.
  a.client_cert_uri = "spiffe://example.org/a";
  a.name = "a-renamed";
  auth.Reload({a});
  EXPECT_THAT(auth.Recheck(*by_cert).status().message(), HasSubstr("no longer names caller 'a'"));
}

TEST(AuthenticatorTest, ReplacedSnapshotsAreFreedWhenTheLastHolderLetsGo) {
  Authenticator auth({Configured("app", "key-app")});
  EXPECT_EQ(auth.live_snapshots(), 1);
  for (int i = 0; i < 2000; ++i) auth.Reload({Configured("app", "key-app")});
  EXPECT_EQ(auth.live_snapshots(), 1);
  absl::StatusOr<Principal> held = auth.Authenticate("Bearer key-app");
  ASSERT_TRUE(held.ok());
  for (int i = 0; i < 10; ++i) auth.Reload({Configured("app", "key-app")});
  EXPECT_EQ(auth.live_snapshots(), 2);
  EXPECT_EQ((*held)->name, "app");  // still readable
  held = absl::CancelledError("call done");
  EXPECT_EQ(auth.live_snapshots(), 1);
}

}  // namespace
}  // namespace uploadbroker::auth
