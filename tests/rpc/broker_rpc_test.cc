// Drives a real in-process broker over gRPC and checks what a calling backend
// sees: authentication, scope, field validation, TTL clamping, durability.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "config/config.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Hash(const std::string& key) { return common::HexEncode(common::Sha256(key)); }

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

class BrokerRpcTest : public ::testing::Test {
 protected:
  // Starts a broker whose STS credential expires `cred_lifetime` from now
  // (to the second, as STS writes it; kept in cred_expiration_).
  void Start(absl::Duration cred_lifetime = absl::Hours(6)) {
    cred_expiration_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now() + cred_lifetime));
    sts_ = dir_.WriteFile("sts.json", absl::StrFormat(
        R"({"AccessKeyId":"STS.TestId","AccessKeySecret":"sts-secret","SecurityToken":"tok/en+=","Expiration":"%s"})",
        absl::FormatTime(absl::RFC3339_sec, cred_expiration_, absl::UTCTimeZone())));
    std::string yaml = absl::StrCat(R"(
listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
callback: {url: "https://broker.example.com/oss/callback"}
ledger: {path: )", dir_.File("ledger.db"), R"(}
credentials: {sts_file: )", sts_, R"(}
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
  - {name: private, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - name: app
    api_key_sha256: )", Hash("key-app"), R"(
    buckets: [photos]
    key_prefixes: [uploads/app/]
    max_size: 1048576
    content_types: [image/png, image/jpeg]
    max_ttl: 30m
  - name: admin
    api_key_sha256: )", Hash("key-admin"), R"(
    buckets: [photos, private]
    max_ttl: 168h
)");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    std::string target = absl::StrCat("127.0.0.1:", server_->grpc_port());
    app_ = std::make_unique<client::BrokerClient>(target, "key-app");
    admin_ = std::make_unique<client::BrokerClient>(target, "key-admin");
    anonymous_ = std::make_unique<client::BrokerClient>(target, "");
    wrong_ = std::make_unique<client::BrokerClient>(target, "key-wrong");
  }

  v1::CreatePostPolicyRequest PostReq() {
    v1::CreatePostPolicyRequest r;
    r.set_bucket("photos");
    r.set_key("uploads/app/cat.png");
    return r;
  }

  static void ExpectError(const absl::Status& st, absl::StatusCode code,
                          const std::string& text) {
    EXPECT_FALSE(text.empty()) << "name the text the caller must see";
    EXPECT_EQ(st.code(), code) << st;
    EXPECT_THAT(st.message(), HasSubstr(text));
  }

  // The validity a caller sees: the stored intent's expires_at minus its
  // created_at (the issue time).
  absl::Duration Validity(client::BrokerClient& client, const std::string& upload_id) {
    auto up = client.GetUpload(upload_id);
    EXPECT_TRUE(up.ok()) << up.status();
    if (!up.ok()) return absl::ZeroDuration();
    return FromProto(up->expires_at()) - FromProto(up->created_at());
  }

  testing::TempDir dir_;
  absl::Time cred_expiration_;
  std::string sts_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<client::BrokerClient> app_, admin_, anonymous_, wrong_;
};

TEST_F(BrokerRpcTest, IssuesAV4PolicyPinningEverything) {
  Start();
  auto req = PostReq();
  (*req.mutable_metadata())["user_id"] = "42";
  auto resp = app_->CreatePostPolicy(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->url(), "https://photos.oss-cn-hangzhou.aliyuncs.com/");
  std::vector<std::string> names;
  std::map<std::string, std::string> fields;
  for (const auto& f : resp->fields()) {
    names.push_back(f.name());
    fields[f.name()] = f.value();
  }
  EXPECT_EQ(names.front(), "key");
  EXPECT_EQ(fields["key"], "uploads/app/cat.png");
  EXPECT_EQ(fields["x-oss-signature-version"], "OSS4-HMAC-SHA256");
  EXPECT_EQ(fields["x-oss-security-token"], "tok/en+=");
  EXPECT_THAT(fields["x-oss-credential"], HasSubstr("STS.TestId/"));
  EXPECT_EQ(std::count(names.begin(), names.end(), "file"), 0);

  auto policy = nlohmann::ordered_json::parse(*common::Base64Decode(fields["policy"]));
  EXPECT_EQ(policy.dump(), resp->policy_json());
  std::string conditions = policy["conditions"].dump();
  EXPECT_THAT(conditions, HasSubstr(R"({"bucket":"photos"})"));
  EXPECT_THAT(conditions, HasSubstr(R"(["eq","$key","uploads/app/cat.png"])"));
  EXPECT_THAT(conditions, HasSubstr(R"(["content-length-range",0,1048576])"));
  EXPECT_THAT(conditions, HasSubstr(R"(["in","$content-type",["image/png","image/jpeg"]])"));
  EXPECT_THAT(conditions, HasSubstr(absl::StrCat(R"({"callback":")", fields["callback"], "\"}")));

  auto cb = nlohmann::json::parse(*common::Base64Decode(fields["callback"]));
  EXPECT_EQ(cb["callbackUrl"], "https://broker.example.com/oss/callback");
  EXPECT_EQ(cb["callbackBodyType"], "application/json");
  EXPECT_THAT(cb["callbackBody"].get<std::string>(), HasSubstr(resp->upload_id()));

  auto stored = app_->GetUpload(resp->upload_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::UPLOAD_STATE_PENDING);
  EXPECT_EQ(stored->caller(), "app");
  EXPECT_EQ(stored->metadata().at("user_id"), "42");
  EXPECT_EQ(stored->max_size(), 1048576);
}

TEST_F(BrokerRpcTest, IssuesV1PolicyAndPresignedPuts) {
  Start();
  auto req = PostReq();
  req.set_signature_version(v1::SIGNATURE_VERSION_V1);
  auto post = app_->CreatePostPolicy(req);
  ASSERT_TRUE(post.ok()) << post.status();
  std::map<std::string, std::string> fields;
  for (const auto& f : post->fields()) fields[f.name()] = f.value();
  EXPECT_EQ(fields["OSSAccessKeyId"], "STS.TestId");
  EXPECT_FALSE(fields["Signature"].empty());

  v1::CreatePresignedPutRequest put;
  put.set_bucket("photos");
  put.set_key("uploads/app/猫 1.png");
  put.set_content_type("image/png");
  put.set_content_length(2048);
  auto v4 = app_->CreatePresignedPut(put);
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_THAT(v4->url(), HasSubstr("https://photos.oss-cn-hangzhou.aliyuncs.com/uploads/app/%E7%8C%AB%201.png?"));
  EXPECT_THAT(v4->url(), HasSubstr("x-oss-additional-headers=content-length"));
  std::map<std::string, std::string> headers;
  for (const auto& h : v4->headers()) headers[h.name()] = h.value();
  EXPECT_EQ(headers["Content-Type"], "image/png");
  EXPECT_EQ(headers["Content-Length"], "2048");
  EXPECT_FALSE(headers["x-oss-callback"].empty());

  put.set_signature_version(v1::SIGNATURE_VERSION_V1);
  // V1 cannot sign Content-Length, so only a caller without a size limit
  // below OSS's 5 GiB cap may have a V1 URL (see PresignedPutBelowTheCap...).
  auto v1put = admin_->CreatePresignedPut(put);
  ASSERT_TRUE(v1put.ok()) << v1put.status();
  EXPECT_THAT(v1put->url(), HasSubstr("OSSAccessKeyId=STS.TestId"));
  EXPECT_THAT(v1put->url(), HasSubstr("security-token="));
}

TEST_F(BrokerRpcTest, PresignedPutBelowTheCapMustSignContentLength) {
  Start();
  v1::CreatePresignedPutRequest put;
  put.set_bucket("photos");
  put.set_key("uploads/app/a.png");
  put.set_content_type("image/png");
  // app's max_size is 1 MiB: without a signed size a PUT could store 5 GiB.
  ExpectError(app_->CreatePresignedPut(put).status(), absl::StatusCode::kInvalidArgument,
              "content_length: required: caller 'app' may upload at most 1048576 bytes");
  put.set_content_length(10);
  put.set_signature_version(v1::SIGNATURE_VERSION_V1);
  ExpectError(app_->CreatePresignedPut(put).status(), absl::StatusCode::kInvalidArgument,
              "signature_version: V1 cannot sign Content-Length");
  put.set_signature_version(v1::SIGNATURE_VERSION_V4);
  auto v4 = app_->CreatePresignedPut(put);
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_THAT(v4->url(), HasSubstr("x-oss-additional-headers=content-length"));
  // admin has OSS's own 5 GiB cap: the exact size stays optional.
  put.clear_content_length();
  auto any_size = admin_->CreatePresignedPut(put);
  ASSERT_TRUE(any_size.ok()) << any_size.status();
  EXPECT_THAT(any_size->url(), Not(HasSubstr("x-oss-additional-headers")));
}

TEST_F(BrokerRpcTest, ForbidsOverwriteUnlessTheRequestAllowsIt) {
  Start();
  auto post = app_->CreatePostPolicy(PostReq());
  ASSERT_TRUE(post.ok()) << post.status();
  std::map<std::string, std::string> fields;
  for (const auto& f : post->fields()) fields[f.name()] = f.value();
  EXPECT_EQ(fields["x-oss-forbid-overwrite"], "true");
  EXPECT_THAT(post->policy_json(), HasSubstr(R"({"x-oss-forbid-overwrite":"true"})"));
  auto req = PostReq();
  req.set_allow_overwrite(true);
  post = app_->CreatePostPolicy(req);
  ASSERT_TRUE(post.ok()) << post.status();
  for (const auto& f : post->fields()) EXPECT_NE(f.name(), "x-oss-forbid-overwrite");
  EXPECT_THAT(post->policy_json(), Not(HasSubstr("x-oss-forbid-overwrite")));

  v1::CreatePresignedPutRequest put;
  put.set_bucket("photos");
  put.set_key("uploads/app/a.png");
  put.set_content_type("image/png");
  put.set_content_length(10);
  auto signed_put = app_->CreatePresignedPut(put);
  ASSERT_TRUE(signed_put.ok()) << signed_put.status();
  std::map<std::string, std::string> headers;
  for (const auto& h : signed_put->headers()) headers[h.name()] = h.value();
  EXPECT_EQ(headers["x-oss-forbid-overwrite"], "true");  // x-oss-*: always signed
  put.set_allow_overwrite(true);
  signed_put = app_->CreatePresignedPut(put);
  ASSERT_TRUE(signed_put.ok()) << signed_put.status();
  for (const auto& h : signed_put->headers()) EXPECT_NE(h.name(), "x-oss-forbid-overwrite");
}

TEST_F(BrokerRpcTest, RejectsUnsafeKeysNamingTheFieldAndReason) {
  Start();
  struct Case {
    std::string key;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"uploads/app/../admin/x", "contains a '..' path segment"},
      {"uploads/app/./x", "contains a '.' path segment"},
      {"uploads/app//x", "contains '//'"},
      {"uploads/app/x\xc2\x85", "contains a control character (U+0085)"},
      {"uploads/app/gnp.\xe2\x80\xae" "exe", "contains a bidirectional control character (U+202E)"},
      {"uploads/app/\xe2\x81\xa7x", "contains a bidirectional control character (U+2067)"},
  };
  for (const Case& c : cases) {
    auto req = PostReq();
    req.set_key(c.key);
    ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kInvalidArgument,
                "key: " + c.reason);
    req.clear_key();
    req.set_key_prefix(c.key + "/");
    ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kInvalidArgument,
                "key_prefix: " + c.reason);
    v1::CreatePresignedPutRequest put;
    put.set_bucket("photos");
    put.set_key(c.key);
    put.set_content_type("image/png");
    put.set_content_length(10);
    ExpectError(app_->CreatePresignedPut(put).status(), absl::StatusCode::kInvalidArgument,
                "key: " + c.reason);
  }
}

TEST_F(BrokerRpcTest, RejectsMissingOrWrongKeys) {
  Start();
  ExpectError(anonymous_->CreatePostPolicy(PostReq()).status(),
              absl::StatusCode::kUnauthenticated, "missing 'authorization: Bearer <api key>' metadata");
  ExpectError(wrong_->CreatePostPolicy(PostReq()).status(),
              absl::StatusCode::kUnauthenticated, "unknown API key");
  ExpectError(wrong_->GetUpload("up_x").status(), absl::StatusCode::kUnauthenticated, "unknown API key");
  ExpectError(anonymous_->ListUploads({}).status(), absl::StatusCode::kUnauthenticated,
              "missing 'authorization: Bearer <api key>' metadata");
}

TEST_F(BrokerRpcTest, RejectsRequestsOutsideTheCallersScope) {
  Start();
  auto req = PostReq();
  req.set_bucket("private");
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kPermissionDenied, "bucket:");
  req = PostReq();
  req.set_key("uploads/other/cat.png");
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kPermissionDenied, "key:");
  req = PostReq();
  req.clear_key();
  req.set_key_prefix("uploads/");
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kPermissionDenied, "key_prefix:");
  req = PostReq();
  req.set_max_size(2 << 20);
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kPermissionDenied, "max_size:");
  req = PostReq();
  req.add_content_types("text/html");
  ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kPermissionDenied, "content_types[0]:");
  v1::CreatePresignedPutRequest put;
  put.set_bucket("photos");
  put.set_key("uploads/app/a.png");
  put.set_content_type("image/png");
  put.set_content_length(2 << 20);
  ExpectError(app_->CreatePresignedPut(put).status(), absl::StatusCode::kPermissionDenied, "content_length:");
}

TEST_F(BrokerRpcTest, RejectsBadFieldsNamingThem) {
  Start();
  struct Case {
    std::function<void(v1::CreatePostPolicyRequest&)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](auto& r) { r.clear_bucket(); }, "bucket: required"},
      {[](auto& r) { r.set_bucket("nope"); }, "bucket: 'nope' is not configured"},
      {[](auto& r) { r.set_key_prefix("uploads/app/"); }, "key, key_prefix"},
      {[](auto& r) { r.set_key("/uploads/app/a"); }, "key: must not start with"},
      {[](auto& r) { r.set_key("uploads/app/\x01"); }, "key: contains a control character"},
      {[](auto& r) { r.set_key("uploads/app/" + std::string(1100, 'a')); }, "key: longer than 1023"},
      {[](auto& r) { r.set_min_size(-1); }, "min_size:"},
      {[](auto& r) { r.set_min_size(10); r.set_max_size(5); }, "min_size: larger than max_size"},
      {[](auto& r) { r.set_ttl_seconds(-5); }, "ttl_seconds:"},
      {[](auto& r) { r.add_content_types("png"); }, "content_types[0]: 'png' is not a media type"},
      {[](auto& r) { (*r.mutable_metadata())["bad key"] = "v"; }, "metadata: key 'bad key'"},
  };
  for (const Case& c : cases) {
    auto req = PostReq();
    c.mutate(req);
    ExpectError(app_->CreatePostPolicy(req).status(), absl::StatusCode::kInvalidArgument, c.field);
  }
  v1::CreatePresignedPutRequest put;
  put.set_bucket("photos");
  put.set_content_type("image/png");
  ExpectError(app_->CreatePresignedPut(put).status(), absl::StatusCode::kInvalidArgument, "key: required");
  put.set_key("uploads/app/a.png");
  put.clear_content_type();
  ExpectError(app_->CreatePresignedPut(put).status(), absl::StatusCode::kInvalidArgument, "content_type: required");
  ExpectError(app_->GetUpload("").status(), absl::StatusCode::kInvalidArgument, "upload_id");
  v1::ListUploadsRequest list;
  list.set_page_token("zzz");
  ExpectError(app_->ListUploads(list).status(), absl::StatusCode::kInvalidArgument, "page_token");
}

TEST_F(BrokerRpcTest, ClampsTtlToCallerLimitAndSevenDays) {
  Start(absl::Hours(30 * 24));  // the credential outlives both limits
  auto req = PostReq();
  req.set_ttl_seconds(7200);  // caller max is 30m
  auto resp = app_->CreatePostPolicy(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(Validity(*app_, resp->upload_id()), absl::Minutes(30));

  req.set_ttl_seconds(30 * 24 * 3600);  // admin max is 168h, OSS's V4 limit 7 days
  resp = admin_->CreatePostPolicy(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(Validity(*admin_, resp->upload_id()), absl::Hours(7 * 24));
  auto up = admin_->GetUpload(resp->upload_id());
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(FromProto(resp->expires_at()), FromProto(up->expires_at()));
}

TEST_F(BrokerRpcTest, ClampsTtlToTheCredentialsRemainingLifetime) {
  Start(absl::Seconds(120));
  auto req = PostReq();
  req.set_ttl_seconds(1200);
  auto resp = app_->CreatePostPolicy(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  // What is left of the credential, in whole seconds, from the issue time.
  auto up = app_->GetUpload(resp->upload_id());
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(Validity(*app_, resp->upload_id()),
            absl::Floor(cred_expiration_ - FromProto(up->created_at()), absl::Seconds(1)));
  EXPECT_GT(Validity(*app_, resp->upload_id()), absl::Seconds(100));
  auto policy = nlohmann::json::parse(resp->policy_json());
  absl::Time expiration;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, policy["expiration"].get<std::string>(), &expiration, nullptr));
  EXPECT_EQ(absl::ToUnixSeconds(expiration), resp->expires_at().seconds());
}

TEST_F(BrokerRpcTest, RefusesToIssueWithAnExpiredCredential) {
  Start(absl::Seconds(-10));
  ExpectError(app_->CreatePostPolicy(PostReq()).status(), absl::StatusCode::kUnavailable, "expired");
}

TEST_F(BrokerRpcTest, HidesOtherCallersUploads) {
  Start();
  auto req = PostReq();
  req.set_bucket("private");
  req.set_key("secret/doc.png");
  auto resp = admin_->CreatePostPolicy(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  ExpectError(app_->GetUpload(resp->upload_id()).status(), absl::StatusCode::kNotFound, "upload_id");
  EXPECT_TRUE(admin_->GetUpload(resp->upload_id()).ok());
  auto mine = app_->CreatePostPolicy(PostReq());
  ASSERT_TRUE(mine.ok());
  auto listed = app_->ListUploads({});
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->uploads_size(), 1);
  EXPECT_EQ(listed->uploads(0).upload_id(), mine->upload_id());
}

TEST_F(BrokerRpcTest, IntentsSurviveARestart) {
  Start();
  auto resp = app_->CreatePostPolicy(PostReq());
  ASSERT_TRUE(resp.ok()) << resp.status();
  server_.reset();
  Start();
  auto stored = app_->GetUpload(resp->upload_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->key(), "uploads/app/cat.png");
}

// Ids lead with the issue time in milliseconds (so the ledger's index grows
// at one end) and keep 80 random bits (so they cannot be guessed).
TEST_F(BrokerRpcTest, UploadIdsLeadWithTheIssueTimeAndStayRandom) {
  Start();
  const int64_t before = absl::ToUnixMillis(absl::Now());
  auto a = app_->CreatePostPolicy(PostReq());
  auto b = app_->CreatePostPolicy(PostReq());
  const int64_t after = absl::ToUnixMillis(absl::Now());
  ASSERT_TRUE(a.ok() && b.ok());
  for (const std::string& id : {a->upload_id(), b->upload_id()}) {
    ASSERT_THAT(id, ::testing::MatchesRegex("up_[0-9a-f]{32}"));
    const int64_t millis = std::stoll(id.substr(3, 12), nullptr, 16);
    EXPECT_GE(millis, before) << id;
    EXPECT_LE(millis, after) << id;
  }
  EXPECT_NE(a->upload_id().substr(15), b->upload_id().substr(15));
}

// Whole-broker drain: a health Watch reads NOT_SERVING before the stream
// ends with UNAVAILABLE.
TEST_F(BrokerRpcTest, DrainingReportsNotServingToHealthWatchers) {
  Start();
  using grpc::health::v1::HealthCheckResponse;
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server_->grpc_port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto watch = health->Watch(&ctx, grpc::health::v1::HealthCheckRequest());
  HealthCheckResponse resp;
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  std::thread drain([this] { server_->Shutdown(); });
  ASSERT_TRUE(watch->Read(&resp));
  EXPECT_EQ(resp.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&resp));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  drain.join();
}

}  // namespace
}  // namespace uploadbroker
