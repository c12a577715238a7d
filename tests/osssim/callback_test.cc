// oss-sim's callback: parameter parsing, body rendering per body type, and
// the request as the broker's verifier sees it, against a fake app server
// (http::Server) that answers however a test wants.
#include "osssim/callback.h"

#include <curl/curl.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "callback/public_key.h"
#include "callback/verifier.h"
#include "common/encoding.h"
#include "gtest/gtest.h"
#include "http/server.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::osssim {
namespace {

std::string Param(const nlohmann::json& j) { return common::Base64Encode(j.dump()); }

TEST(CallbackParam, ParsesAndValidates) {
  auto p = ParseCallbackParam(Param({{"callbackUrl", "http://a/x;http://b/y"},
                                     {"callbackBody", "o=${object}"}}));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->urls.size(), 2u);
  EXPECT_FALSE(p->json);
  EXPECT_FALSE(ParseCallbackParam("%%%").ok());
  EXPECT_FALSE(ParseCallbackParam(common::Base64Encode("{not json")).ok());
  EXPECT_FALSE(ParseCallbackParam(Param({{"callbackUrl", "http://a/"}, {"callbackBody", ""}})).ok());
  EXPECT_FALSE(ParseCallbackParam(Param({{"callbackUrl", "http://a/"}, {"callbackBody", "${x"}})).ok());
  EXPECT_FALSE(ParseCallbackParam(Param({{"callbackUrl", "http://a/"}, {"callbackBody", "b"},
                                         {"callbackBodyType", "text/plain"}}))
                   .ok());
  EXPECT_FALSE(ParseCallbackParam(Param({{"callbackUrl", "http://a/1;http://a/2;http://a/3;"
                                                         "http://a/4;http://a/5;http://a/6"},
                                         {"callbackBody", "b"}}))
                   .ok());
}

TEST(CallbackBody, JsonWritesSizeAsNumberAndEscapesStrings) {
  CallbackParam p;
  p.json = true;
  p.body_template = R"({"object":${object},"size":${size},"v":${x:v},"w":${imageInfo.width}})";
  auto body = RenderCallbackBody(p, {{"object", "a \"q\" 猫"}, {"size", "12"}}, {{"x:v", "1"}});
  ASSERT_TRUE(body.ok());
  nlohmann::json j = nlohmann::json::parse(*body);
  EXPECT_EQ(j["object"], "a \"q\" 猫");
  EXPECT_EQ(j["size"], 12);
  EXPECT_EQ(j["v"], "1");
  EXPECT_EQ(j["w"], "");
}

TEST(CallbackBody, FormUrlEncodesValues) {
  CallbackParam p;
  p.body_template = "object=${object}&mimeType=${mimeType}&x:a=${x:a}";
  auto body = RenderCallbackBody(p, {{"object", "a/b c"}, {"mimeType", "text/plain"}}, {{"x:a", "1&2"}});
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "object=a%2Fb%20c&mimeType=text%2Fplain&x:a=1%262");
}

class FakeAppServer {
 public:
  explicit FakeAppServer(http::Response answer) {
    auto s = http::Server::Create({}, [this, answer](http::Request req, http::Responder respond) {
      {
        absl::MutexLock lock(&mu_);
        last_ = std::move(req);
      }
      respond(answer);
    });
    EXPECT_TRUE(s.ok());
    server_ = *std::move(s);
  }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", server_->port(), path);
  }
  http::Request Last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  absl::Mutex mu_;
  http::Request last_;
  std::unique_ptr<http::Server> server_;
};

CallbackParam JsonParam(std::vector<std::string> urls) {
  CallbackParam p;
  p.urls = std::move(urls);
  p.json = true;
  return p;
}

TEST(SendCallback, SignsLikeOssSoTheBrokersVerifierAccepts) {
  FakeAppServer app(http::Response{200, "application/json", R"({"ok":true})", {}});
  SimKey key = SimKey::Generate();
  std::string body = R"({"object":"a"})";
  CallbackOutcome out = SendCallback(JsonParam({app.Url("/oss/cb%20x?a=1&b=%2F")}), body, key,
                                     {"http://127.0.0.1:1/sim_pub_key.pem", "REQ1", "bkt"});
  ASSERT_TRUE(out.ok) << out.message;
  EXPECT_EQ(out.body, R"({"ok":true})");
  http::Request req = app.Last();
  EXPECT_EQ(req.Header("x-oss-request-id"), "REQ1");
  EXPECT_EQ(req.Header("x-oss-bucket"), "bkt");
  EXPECT_EQ(req.Header("x-oss-signature-version"), "1.0");
  EXPECT_EQ(req.Header("x-oss-tag"), "CALLBACK");
  EXPECT_EQ(req.Header("User-Agent"), "aliyun-oss-callback");
  EXPECT_EQ(req.Header("Content-Type"), "application/json");
  EXPECT_EQ(*common::Base64Decode(req.Header("x-oss-pub-key-url")),
            "http://127.0.0.1:1/sim_pub_key.pem");
  auto pub = callback::PublicKey::FromPem(key.PublicPem());
  ASSERT_TRUE(pub.ok());
  std::string to_sign = callback::StringToSign("/oss/cb x", req.query_raw, req.body);
  EXPECT_TRUE(pub->VerifyMd5(to_sign, *common::Base64Decode(req.Header("Authorization"))).ok());
}

TEST(SendCallback, ReportsOssMessagesAndTriesTheNextUrl) {
  SimKey key = SimKey::Generate();
  CallbackRequestInfo info{"http://127.0.0.1:1/k.pem", "R", "b", absl::Seconds(2)};
  FakeAppServer not_found(http::Response{404, "application/json", "{}", {}});
  FakeAppServer not_json(http::Response{200, "text/plain", "hello", {}});
  FakeAppServer good(http::Response{200, "application/json", R"({"n":1})", {}});
  EXPECT_EQ(SendCallback(JsonParam({not_found.Url("/")}), "{}", key, info).message,
            "Error status : 404.");
  EXPECT_EQ(SendCallback(JsonParam({not_json.Url("/")}), "{}", key, info).message,
            "Response body is not valid json format.");
  EXPECT_NE(SendCallback(JsonParam({"http://127.0.0.1:1/"}), "{}", key, info)
                .message.find("can not connect to your callbackUrl"),
            std::string::npos);
  CallbackOutcome out =
      SendCallback(JsonParam({not_found.Url("/"), good.Url("/")}), "{}", key, info);
  EXPECT_TRUE(out.ok);
  EXPECT_EQ(out.body, R"({"n":1})");
}

}  // namespace
}  // namespace uploadbroker::osssim
