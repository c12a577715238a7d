// OSS callbacks against a real in-process broker: signed with a test key the
// broker trusts through explicit config, sent over real sockets. Each case
// checks what OSS (and so the uploader) would see, and what the ledger holds.
#include <poll.h>
#include <sqlite3.h>

#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/broker_client.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "config/config.h"
#include "ingest/callback_handler.h"
#include "server/server.h"
#include "tests/callback/test_signer.h"
#include "tests/http/raw_client.h"
#include "tests/testing/broker_yaml.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker {
namespace {

using ::testing::HasSubstr;

class CallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string yaml = absl::StrCat(
        testing::BrokerYamlHead(dir_, signer_, "https://broker.example.com/oss/callback?src=oss",
                                ", response_extra: {service: photos}"), R"(
buckets:
  - {name: photos, region: cn-hangzhou, endpoint: "https://oss-cn-hangzhou.aliyuncs.com"}
callers:
  - name: app
    api_key_sha256: )", common::HexEncode(common::Sha256("key-app")), R"(
    buckets: [photos]
    key_prefixes: [uploads/]
    max_size: 1000
    content_types: [image/png, image/jpeg]
)");
    server::Options opts;
    auto config = config::LoadConfig(dir_.WriteFile("broker.yaml", yaml));
    ASSERT_TRUE(config.ok()) << config.status();
    opts.config = *std::move(config);
    opts.intents_gauge_refresh = absl::Milliseconds(20);  // the gauge is a cached count
    auto s = server::Server::Create(std::move(opts));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    client_ = std::make_unique<client::BrokerClient>(
        absl::StrCat("127.0.0.1:", server_->grpc_port()), "key-app");
  }

  std::string Issue(const std::string& key, bool prefix = false) {
    v1::CreatePostPolicyRequest req;
    req.set_bucket("photos");
    if (prefix) {
      req.set_key_prefix(key);
    } else {
      req.set_key(key);
    }
    (*req.mutable_metadata())["user"] = "42";
    auto resp = client_->CreatePostPolicy(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->upload_id() : "";
  }

  static std::string JsonBody(const std::string& id, const std::string& object, int64_t size = 5,
                              const std::string& mime = "image/png") {
    return nlohmann::json{{"upload_id", id}, {"bucket", "photos"}, {"object", object},
                          {"etag", "\"D8E8FCA2DC0F896FD7CB4CB0031BA249\""}, {"size", size},
                          {"mimeType", mime}, {"imageInfo.height", ""}, {"crc64", "123"},
                          {"clientIp", "203.0.113.7"}, {"reqId", "REQ1"}, {"operation", "PostObject"}}
        .dump();
  }

  struct Sent {
    std::string target = "/oss/callback?src=oss";  // what reaches the broker
    std::string signed_path = "/oss/callback";    // what OSS signed
    std::string query = "src=oss";
    std::string body;
    std::string content_type = "application/json";
    std::string key_url = testing::kTestKeyUrl;
    const callback::TestSigner* signer = nullptr;
    std::string mutate_body_after_signing;  // replaces body once signed
  };

  http::Reply Post(const Sent& s) {
    const callback::TestSigner& signer = s.signer ? *s.signer : signer_;
    std::string signed_path = absl::StrCat(s.signed_path, s.query.empty() ? "" : "?", s.query);
    std::string req = testing::SignedCallback(signer, s.target, signed_path, s.body, s.content_type, s.key_url);
    if (!s.mutate_body_after_signing.empty()) {
      req.replace(req.size() - s.body.size(), s.body.size(), s.mutate_body_after_signing);
    }
    auto c = http::RawClient::Connect(server_->http_port());
    EXPECT_NE(c, nullptr);
    if (!c) return {};
    EXPECT_TRUE(c->Send(req));
    auto reply = c->ReadResponse();
    EXPECT_TRUE(reply.has_value());
    return reply.value_or(http::Reply{});
  }

  http::Reply Get(const std::string& path) {
    auto c = http::RawClient::Connect(server_->http_port());
    c->Send(absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    return c->ReadResponse().value_or(http::Reply{});
  }

  int64_t Events(const std::string& upload_id) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(dir_.File("ledger.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events WHERE upload_id = ?1", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, upload_id.c_str(), -1, SQLITE_TRANSIENT);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  void ExpectRejected(const http::Reply& r, int status, const std::string& reason,
                      const std::string& upload_id) {
    EXPECT_FALSE(reason.empty()) << "name the reason the broker must give";
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_THAT(r.body, HasSubstr(reason));
    EXPECT_TRUE(nlohmann::json::accept(r.body)) << r.body;
    if (!upload_id.empty()) {
      EXPECT_EQ(Events(upload_id), 0);
      EXPECT_EQ(client_->GetUpload(upload_id)->state(), v1::UPLOAD_STATE_PENDING);
    }
  }

  testing::TempDir dir_;
  callback::TestSigner signer_;
  std::unique_ptr<server::Server> server_;
  std::unique_ptr<client::BrokerClient> client_;
};

TEST_F(CallbackTest, ValidJsonCallbackIsRecordedThenAnswered) {
  std::string id = Issue("uploads/cat.png");
  Sent s;
  s.body = JsonBody(id, "uploads/cat.png");
  http::Reply r = Post(s);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("Content-Length"), std::to_string(r.body.size()));
  EXPECT_EQ(r.Header("Content-Type"), "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["upload_id"], id);
  EXPECT_EQ(j["bucket"], "photos");
  EXPECT_EQ(j["key"], "uploads/cat.png");
  EXPECT_EQ(j["size"], 5);
  EXPECT_EQ(j["etag"], "\"D8E8FCA2DC0F896FD7CB4CB0031BA249\"");
  EXPECT_EQ(j["service"], "photos");
  EXPECT_EQ(Events(id), 1);
  auto up = client_->GetUpload(id);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->state(), v1::UPLOAD_STATE_COMPLETED);
  EXPECT_EQ(up->completion().client_ip(), "203.0.113.7");
  EXPECT_EQ(up->completion().request_id(), "REQ1");
  EXPECT_EQ(up->completion().source(), v1::COMPLETION_SOURCE_CALLBACK);
  EXPECT_EQ(up->metadata().at("user"), "42");
}

TEST_F(CallbackTest, OnlyTheIssuedBodyTypeIsAccepted) {
  // The broker's callback parameter says callbackBodyType application/json;
  // OSS sends nothing else, so another type is not a callback we asked for.
  std::string key = "uploads/用户 42/照片+1.png";
  std::string id = Issue(key);
  Sent s;
  s.content_type = "application/x-www-form-urlencoded";
  s.body = absl::StrCat("upload_id=", id, "&bucket=photos&object=", common::UriEncode(key, false),
                        "&etag=%22abc%22&size=7&mimeType=image%2Fpng&imageInfo.height=&crc64=1");
  ExpectRejected(Post(s), 415, "Content-Type: 'application/x-www-form-urlencoded' is not the application/json", id);
  s.content_type = "text/plain";
  s.body = JsonBody(id, key);
  ExpectRejected(Post(s), 415, "Content-Type: 'text/plain'", id);
  s.content_type = "Application/JSON; charset=utf-8";  // parameters and case do not matter
  EXPECT_EQ(Post(s).status, 200);
  EXPECT_EQ(client_->GetUpload(id)->completion().key(), key);
  std::string metrics = Get("/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"content_type\"} 2"));
}

TEST_F(CallbackTest, PrefixRewritingProxyDoesNotBreakVerification) {
  std::string id = Issue("uploads/", /*prefix=*/true);
  Sent s;
  s.target = "/callback?src=oss";  // an ingress stripped "/oss"
  s.body = JsonBody(id, "uploads/any/name.jpg", 9, "image/jpeg");
  EXPECT_EQ(Post(s).status, 200);
  EXPECT_EQ(Events(id), 1);
}

TEST_F(CallbackTest, DuplicateCallbackGetsTheSameAnswerAndOneEvent) {
  std::string id = Issue("uploads/dup.png");
  Sent s;
  s.body = JsonBody(id, "uploads/dup.png");
  http::Reply first = Post(s);
  http::Reply second = Post(s);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(first.body, second.body);
  EXPECT_EQ(Events(id), 1);
  // A second, different object under the same authorization is refused.
  auto other = nlohmann::json::parse(s.body);
  other["etag"] = "\"0000\"";
  s.body = other.dump();
  http::Reply third = Post(s);
  EXPECT_EQ(third.status, 409) << third.body;
  EXPECT_EQ(Events(id), 1);
}

TEST_F(CallbackTest, ARepeatMustBeTheSameObjectInEveryField) {
  std::string id = Issue("uploads/again.png");
  Sent s;
  s.body = JsonBody(id, "uploads/again.png", 5);
  ASSERT_EQ(Post(s).status, 200);
  // Same key and ETag, but another size: not the object that completed it.
  s.body = JsonBody(id, "uploads/again.png", 6);
  http::Reply r = Post(s);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.body, ingest::kRejectedBody);  // says nothing of the stored completion
  // Same key, ETag and size, but another bucket.
  auto other = nlohmann::json::parse(JsonBody(id, "uploads/again.png", 5));
  other["bucket"] = "their-bucket";
  s.body = other.dump();
  r = Post(s);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.body, ingest::kRejectedBody);
  EXPECT_EQ(Events(id), 1);
  EXPECT_EQ(client_->GetUpload(id)->completion().size(), 5);
  EXPECT_THAT(Get("/metrics").body,
              HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"settled_elsewhere\"} 2"));
}

TEST_F(CallbackTest, TamperedRequestsAreRefusedAndWriteNothing) {
  std::string id = Issue("uploads/t.png");
  Sent good;
  good.body = JsonBody(id, "uploads/t.png");

  Sent flipped = good;
  flipped.mutate_body_after_signing = good.body;
  flipped.mutate_body_after_signing[good.body.size() / 2] ^= 0x01;
  ExpectRejected(Post(flipped), 401, "signature", id);

  Sent changed_query = good;
  changed_query.target = "/oss/callback?src=evil";
  ExpectRejected(Post(changed_query), 401, "signature", id);

  callback::TestSigner forger;
  Sent forged = good;
  forged.signer = &forger;
  ExpectRejected(Post(forged), 401, "signature", id);

  // Signed by the simulator key but claiming OSS's own key URL: the pinned
  // OSS key is used and the signature fails.
  Sent claims_oss = good;
  claims_oss.key_url = "https://gosspublic.alicdn.com/callback_pub_key_v1.pem";
  ExpectRejected(Post(claims_oss), 401, "signature", id);
  EXPECT_EQ(Post(good).status, 200);
}

TEST_F(CallbackTest, KeyUrlsOutsideTheAllowListAreRefusedWithoutAnyConnection) {
  // A listener that counts connections stands where a naive verifier would
  // fetch the key from.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string local = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/callback_pub_key_v1.pem");

  std::string id = Issue("uploads/k.png");
  for (const std::string& url :
       {local, std::string("https://gosspublic.alicdn.com.evil.example/callback_pub_key_v1.pem"),
        std::string("https://gosspublic.alicdn.com@evil/callback_pub_key_v1.pem"),
        std::string("https://gosspublic.alicdn.com/callback_pub_key_v2.pem")}) {
    Sent s;
    s.body = JsonBody(id, "uploads/k.png");
    s.key_url = url;
    ExpectRejected(Post(s), 403, "x-oss-pub-key-url not allowed", id);
  }
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 100), 0) << "the broker connected to a key URL";
  ::close(fd);
}

TEST_F(CallbackTest, MalformedInputGetsA400NamingTheProblem) {
  std::string id = Issue("uploads/m.png");
  Sent bad_json;
  bad_json.body = "{\"upload_id\":";
  ExpectRejected(Post(bad_json), 400, "not valid JSON", id);

  Sent bad_size;
  bad_size.body = JsonBody(id, "uploads/m.png", -3);
  ExpectRejected(Post(bad_size), 400, "size", id);

  // Authorization that is not base64.
  std::string body = JsonBody(id, "uploads/m.png");
  auto c = http::RawClient::Connect(server_->http_port());
  c->Send(absl::StrCat("POST /oss/callback?src=oss HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                       "Authorization: not*base64\r\nx-oss-pub-key-url: ", common::Base64Encode(testing::kTestKeyUrl),
                       "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body));
  ExpectRejected(c->ReadResponse().value_or(http::Reply{}), 400, "Authorization: not base64", id);
}

TEST_F(CallbackTest, CallbacksOutsideTheIntentAreRefused) {
  std::string id = Issue("uploads/exact.png");
  Sent unknown;
  unknown.body = JsonBody("up_doesnotexist", "uploads/exact.png");
  // One answer for all of them: a sender cannot tell an id that was never
  // issued from one whose intent the report does not fit.
  http::Reply r = Post(unknown);
  ExpectRejected(r, 409, "rejected", "");
  EXPECT_EQ(r.body, ingest::kRejectedBody);

  Sent other_key;
  other_key.body = JsonBody(id, "uploads/other.png");
  r = Post(other_key);
  ExpectRejected(r, 409, "rejected", id);
  EXPECT_EQ(r.body, ingest::kRejectedBody);

  Sent too_big;
  too_big.body = JsonBody(id, "uploads/exact.png", 5000);
  r = Post(too_big);
  ExpectRejected(r, 409, "rejected", id);
  EXPECT_EQ(r.body, ingest::kRejectedBody);

  Sent wrong_type;
  wrong_type.body = JsonBody(id, "uploads/exact.png", 5, "text/html");
  r = Post(wrong_type);
  ExpectRejected(r, 409, "rejected", id);
  EXPECT_EQ(r.body, ingest::kRejectedBody);

  // The committer checks these against the stored intent; each is counted
  // under its own reason (the answer does not say it).
  std::string metrics = Get("/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"unknown_upload\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"intent_mismatch\"} 3"));

  // The intent is still open for the right object.
  Sent right;
  right.body = JsonBody(id, "uploads/exact.png");
  EXPECT_EQ(Post(right).status, 200);
  EXPECT_EQ(Events(id), 1);
}

TEST_F(CallbackTest, OversizeBodyIsRefusedBeforeParsing) {
  std::string id = Issue("uploads/big.png");
  Sent big;
  big.body = JsonBody(id, "uploads/big.png");
  big.body.insert(big.body.size() - 1, absl::StrCat(",\"pad\":\"", std::string(70 * 1024, 'x'), "\""));
  ExpectRejected(Post(big), 413, "body exceeds 65536 bytes", id);
}

TEST_F(CallbackTest, HealthReadinessAndMetrics) {
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/readyz").status, 200);
  std::string id = Issue("uploads/metrics.png");
  Sent s;
  s.body = JsonBody(id, "uploads/metrics.png");
  ASSERT_EQ(Post(s).status, 200);
  Sent bad = s;
  bad.target = "/oss/callback?src=x";
  Post(bad);
  // The intents gauge is a count refreshed off the event loop: wait for it.
  http::Reply m;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);;) {
    m = Get("/metrics");
    if (absl::StrContains(m.body, "upload_broker_intents{state=\"completed\"} 1") ||
        absl::Now() > deadline) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(m.status, 200);
  EXPECT_THAT(m.Header("Content-Type").value_or(""), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(m.body, HasSubstr("upload_broker_callbacks_total{result=\"accepted\",reason=\"recorded\"} 1"));
  EXPECT_THAT(m.body, HasSubstr("upload_broker_callbacks_total{result=\"rejected\",reason=\"signature\"} 1"));
  EXPECT_THAT(m.body, HasSubstr("upload_broker_intents{state=\"completed\"} 1"));
  EXPECT_THAT(m.body, HasSubstr("upload_broker_callback_verify_seconds_count 2"));
  EXPECT_THAT(m.body, HasSubstr("upload_broker_callback_commit_seconds_bucket"));
  EXPECT_EQ(Get("/nope").status, 404);
}

}  // namespace
}  // namespace uploadbroker
