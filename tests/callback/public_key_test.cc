#include "callback/public_key.h"

#include <openssl/evp.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_signer.h"

namespace uploadbroker::callback {
namespace {

TEST(OssPinnedKey, MatchesPinnedSpkiSha256) {
  EXPECT_EQ(OssPinnedKey().SpkiSha256Hex(),
            "a1f54d0fb9263a14276c9e890f99cdeae986265b3985e6b1aa4603631c5bc9cf");
}

TEST(OssPinnedKey, IsParsedOnce) {
  EXPECT_EQ(&OssPinnedKey(), &OssPinnedKey());
}

TEST(PublicKey, FromPemRejectsGarbage) {
  EXPECT_EQ(PublicKey::FromPem("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(PublicKey::FromPem("not a pem").ok());
  EXPECT_FALSE(PublicKey::FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                  "-----END PUBLIC KEY-----\n")
                   .ok());
}

TEST(PublicKey, FromPemRejectsNonRsaKey) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ec(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  ASSERT_NE(ec, nullptr);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()),
                                                &BIO_free);
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), ec.get()), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  absl::StatusOr<PublicKey> key =
      PublicKey::FromPem(absl::string_view(data, static_cast<size_t>(len)));
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().message(), "public key: not RSA");
}

TEST(PublicKey, VerifiesMd5SignatureOnlyOverTheSignedData) {
  TestSigner signer;
  PublicKey key = signer.Public();
  std::string sig = signer.Sign("hello");
  EXPECT_TRUE(key.VerifyMd5("hello", sig).ok());
  EXPECT_EQ(key.VerifyMd5("hellO", sig).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(PublicKey, RejectsSignatureWithOtherDigest) {
  TestSigner signer;
  EXPECT_FALSE(signer.Public()
                   .VerifyMd5("hello", signer.Sign("hello", EVP_sha256()))
                   .ok());
}

TEST(PublicKey, RejectsMalformedSignatures) {
  TestSigner signer;
  PublicKey key = signer.Public();
  std::string sig = signer.Sign("hello");
  EXPECT_FALSE(key.VerifyMd5("hello", "").ok());
  EXPECT_FALSE(key.VerifyMd5("hello", sig.substr(1)).ok());
  EXPECT_FALSE(key.VerifyMd5("hello", sig + "x").ok());
  EXPECT_FALSE(key.VerifyMd5("hello", std::string(sig.size(), '\xff')).ok());
}

// VerifyMd5 copies one prepared context per key: the copy must leave it
// reusable, from many threads at once, for good and bad signatures alike.
TEST(PublicKey, PreparedContextIsReusableAcrossThreads) {
  TestSigner signer;
  PublicKey key = signer.Public();
  const std::string good = signer.Sign("payload");
  const std::string other = signer.Sign("other");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!key.VerifyMd5("payload", good).ok()) ++wrong;
        if (key.VerifyMd5("payload", other).ok()) ++wrong;
        if (!key.VerifyMd5("other", other).ok()) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(PublicKey, MovedKeyStillVerifies) {
  TestSigner signer;
  PublicKey moved = signer.Public();
  PublicKey key = std::move(moved);
  EXPECT_TRUE(key.VerifyMd5("hello", signer.Sign("hello")).ok());
}

TEST(PublicKey, SpkiHashDiffersPerKey) {
  TestSigner a, b;
  EXPECT_EQ(a.Public().SpkiSha256Hex().size(), 64u);
  EXPECT_NE(a.Public().SpkiSha256Hex(), b.Public().SpkiSha256Hex());
  EXPECT_EQ(a.Public().SpkiSha256Hex(), a.Public().SpkiSha256Hex());
}

}  // namespace
}  // namespace uploadbroker::callback
