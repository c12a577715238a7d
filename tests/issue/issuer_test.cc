// The Issuer on its own: a fake ledger, a fake clock and credential files in
// a temporary directory.
#include "issue/issuer.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_ledger.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::issue {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

// What `done` reported, and on which thread.
struct Answer {
  absl::Notification done;
  absl::Status status;
  std::thread::id thread;
};

class IssuerTest : public ::testing::Test {
 protected:
  IssuerTest() : clock_(kNow), ledger_(&clock_) {
    config_.callback_url = "https://broker.example.com/oss/callback";
    config_.default_ttl = absl::Minutes(15);
    config::Bucket b;
    b.name = "photos";
    b.region = "cn-hangzhou";
    b.endpoint = "https://oss-cn-hangzhou.aliyuncs.com";
    b.public_host = "photos.oss-cn-hangzhou.aliyuncs.com";
    b.api_host = b.public_host;
    config_.buckets.push_back(b);
    caller_.name = "app";
    caller_.scope.buckets = {"photos"};
    caller_.scope.key_prefixes = {"uploads/app/"};
    caller_.scope.max_size = 1000;
    caller_.scope.content_types = {"image/png", "image/jpeg"};
    caller_.scope.max_ttl = absl::Hours(1);
  }

  void UseStaticKey() {
    config::CredentialSource src;
    src.access_key_id_file = dir_.WriteFile("id", "LTAI-test\n");
    src.access_key_secret_file = dir_.WriteFile("secret", "s3cret\n");
    MakeIssuer(src);
  }

  void UseSts(absl::Time expiration) {
    config::CredentialSource src;
    src.sts_file = dir_.WriteFile(
        "sts.json", absl::StrCat(R"({"AccessKeyId":"STS.id","AccessKeySecret":"s","SecurityToken":"tok",)",
                                 R"("Expiration":")", absl::FormatTime(absl::RFC3339_sec, expiration, absl::UTCTimeZone()),
                                 R"("})"));
    MakeIssuer(src);
  }

  void MakeIssuer(const config::CredentialSource& src) {
    auto creds = credentials::CredentialProvider::Create(src, &clock_);
    ASSERT_TRUE(creds.ok()) << creds.status();
    creds_ = *std::move(creds);
    issuer_ = std::make_unique<Issuer>(config_, *creds_, ledger_, clock_);
  }

  absl::Status Post(const v1::CreatePostPolicyRequest& req, v1::CreatePostPolicyResponse* resp,
                    std::thread::id* thread = nullptr) {
    Answer a;
    issuer_->CreatePostPolicy(caller_, req, resp, [&a](absl::Status st) {
      a.status = st;
      a.thread = std::this_thread::get_id();
      a.done.Notify();
    });
    a.done.WaitForNotification();
    if (thread != nullptr) *thread = a.thread;
    return a.status;
  }

  absl::Status Put(const v1::CreatePresignedPutRequest& req, v1::CreatePresignedPutResponse* resp) {
    Answer a;
    issuer_->CreatePresignedPut(caller_, req, resp, [&a](absl::Status st) {
      a.status = st;
      a.done.Notify();
    });
    a.done.WaitForNotification();
    return a.status;
  }

  static v1::CreatePostPolicyRequest PostFor(const std::string& key) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("photos");
    req.set_key(key);
    return req;
  }

  testing::TempDir dir_;
  testing::FakeClock clock_;
  testing::FakeLedger ledger_;
  config::Config config_;
  auth::Identity caller_;
  std::unique_ptr<credentials::CredentialProvider> creds_;
  std::unique_ptr<Issuer> issuer_;
};

TEST_F(IssuerTest, AnswersOnlyOnceTheIntentIsStored) {
  UseStaticKey();
  v1::CreatePostPolicyResponse resp;
  std::thread::id thread;
  ASSERT_TRUE(Post(PostFor("uploads/app/a.png"), &resp, &thread).ok());
  // `done` ran on the ledger's thread, after the write.
  EXPECT_NE(thread, std::this_thread::get_id());
  absl::StatusOr<v1::Upload> stored = ledger_.GetUpload(resp.upload_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_EQ(stored->caller(), "app");
  EXPECT_EQ(stored->bucket(), "photos");
  EXPECT_EQ(stored->key(), "uploads/app/a.png");
  EXPECT_EQ(stored->max_size(), 1000);
  EXPECT_THAT(stored->content_types(), ElementsAre("image/png", "image/jpeg"));
  EXPECT_EQ(stored->created_at().seconds(), absl::ToUnixSeconds(kNow));
  EXPECT_EQ(stored->expires_at().seconds(), absl::ToUnixSeconds(kNow + absl::Minutes(15)));
  EXPECT_EQ(resp.expires_at().seconds(), stored->expires_at().seconds());
  EXPECT_EQ(resp.url(), "https://photos.oss-cn-hangzhou.aliyuncs.com/");
}

TEST_F(IssuerTest, LedgerThatCannotCommitIsTheAnswer) {
  UseStaticKey();
  ledger_.SetHealthy(false);
  v1::CreatePostPolicyResponse resp;
  absl::Status st = Post(PostFor("uploads/app/a.png"), &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ledger_.size(), 0u);
}

TEST_F(IssuerTest, RequestOutsideTheScopeIsRefusedOnTheCallingThreadAndStoresNothing) {
  UseStaticKey();
  v1::CreatePostPolicyResponse resp;
  std::thread::id thread;
  absl::Status st = Post(PostFor("uploads/other/a.png"), &resp, &thread);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "key: 'uploads/other/a.png' is outside caller 'app' allowed prefixes");
  EXPECT_EQ(thread, std::this_thread::get_id());
  v1::CreatePostPolicyRequest bucket = PostFor("uploads/app/a.png");
  bucket.set_bucket("nope");
  st = Post(bucket, &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "bucket: 'nope' is not configured on this broker");
  EXPECT_EQ(ledger_.size(), 0u);
}

// #17: keys whose dot segments are disguised are never signed, as a key or
// as a key_prefix, whatever the method.
TEST_F(IssuerTest, DisguisedDotSegmentsAreRefusedNamingTheField) {
  UseStaticKey();
  for (const std::string& key :
       {std::string("uploads/app/..\\..\\x"), std::string("uploads/app/%2E%2e/x"),
        std::string("uploads/app/\xef\xbc\x8e\xef\xbc\x8e/x"),
        std::string("uploads/app/\xe2\x80\xa4\xe2\x80\xa4/x"),
        std::string("uploads/app/\xef\xb9\x92./x")}) {
    v1::CreatePostPolicyResponse resp;
    absl::Status st = Post(PostFor(key), &resp);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(std::string(st.message()), ::testing::StartsWith("key: contains a path segment that reads as '..'"));
    v1::CreatePostPolicyRequest prefix;
    prefix.set_bucket("photos");
    prefix.set_key_prefix(key + "/");
    st = Post(prefix, &resp);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(std::string(st.message()), ::testing::StartsWith("key_prefix: contains a path segment"));
    v1::CreatePresignedPutRequest put;
    put.set_bucket("photos");
    put.set_key(key);
    v1::CreatePresignedPutResponse put_resp;
    st = Put(put, &put_resp);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << key;
  }
  EXPECT_EQ(ledger_.size(), 0u);
}

TEST_F(IssuerTest, WithoutAKeyTheObjectGoesUnderTheFirstPrefixNamedByTheUploadId) {
  UseStaticKey();
  v1::CreatePostPolicyRequest req;
  req.set_bucket("photos");
  v1::CreatePostPolicyResponse resp;
  ASSERT_TRUE(Post(req, &resp).ok());
  EXPECT_EQ(resp.key(), absl::StrCat("uploads/app/", resp.upload_id()));
  EXPECT_THAT(resp.upload_id(), ::testing::MatchesRegex("up_[0-9a-f]{32}"));
}

TEST_F(IssuerTest, TtlIsClampedToTheCallersMaximum) {
  UseStaticKey();
  v1::CreatePostPolicyRequest req = PostFor("uploads/app/a.png");
  req.set_ttl_seconds(7200);
  v1::CreatePostPolicyResponse resp;
  ASSERT_TRUE(Post(req, &resp).ok());
  EXPECT_EQ(resp.expires_at().seconds(), absl::ToUnixSeconds(kNow + absl::Hours(1)));
}

TEST_F(IssuerTest, TtlIsClampedToTheStsCredentialsRemainingLifetime) {
  UseSts(kNow + absl::Minutes(10));
  v1::CreatePostPolicyResponse resp;
  ASSERT_TRUE(Post(PostFor("uploads/app/a.png"), &resp).ok());
  EXPECT_EQ(resp.expires_at().seconds(), absl::ToUnixSeconds(kNow + absl::Minutes(10)));
}

TEST_F(IssuerTest, ExpiredStsCredentialIsUnavailable) {
  UseSts(kNow + absl::Minutes(10));
  clock_.Advance(absl::Minutes(11));
  v1::CreatePostPolicyResponse resp;
  absl::Status st = Post(PostFor("uploads/app/a.png"), &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "the STS credential has expired; refresh the credential file");
  EXPECT_EQ(ledger_.size(), 0u);
}

TEST_F(IssuerTest, PresignedPutPinsTheTypeAndExactSize) {
  UseStaticKey();
  v1::CreatePresignedPutRequest req;
  req.set_bucket("photos");
  req.set_key("uploads/app/b.png");
  req.set_content_type("image/png");
  req.set_content_length(10);
  v1::CreatePresignedPutResponse resp;
  ASSERT_TRUE(Put(req, &resp).ok());
  absl::StatusOr<v1::Upload> stored = ledger_.GetUpload(resp.upload_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->method(), v1::UPLOAD_METHOD_PUT);
  EXPECT_EQ(stored->min_size(), 10);
  EXPECT_EQ(stored->max_size(), 10);
  EXPECT_THAT(stored->content_types(), ElementsAre("image/png"));
  EXPECT_EQ(resp.method(), "PUT");
  EXPECT_THAT(resp.url(), HasSubstr("https://photos.oss-cn-hangzhou.aliyuncs.com/uploads/app/b.png?"));
}

TEST_F(IssuerTest, PresignedPutLargerThanTheCallersLimitIsDenied) {
  UseStaticKey();
  v1::CreatePresignedPutRequest req;
  req.set_bucket("photos");
  req.set_key("uploads/app/b.png");
  req.set_content_type("image/png");
  req.set_content_length(1001);
  v1::CreatePresignedPutResponse resp;
  absl::Status st = Put(req, &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "content_length: 1001 exceeds caller 'app' limit of 1000");
  EXPECT_EQ(ledger_.size(), 0u);
}

}  // namespace
}  // namespace uploadbroker::issue
