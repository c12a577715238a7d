#include "policy/callback_param.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "vectors.h"

namespace uploadbroker::policy {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kSystemVariables[] = {"bucket",
                                            "object",
                                            "etag",
                                            "size",
                                            "mimeType",
                                            "imageInfo.height",
                                            "imageInfo.width",
                                            "imageInfo.format",
                                            "crc64",
                                            "contentMd5",
                                            "clientIp",
                                            "reqId",
                                            "operation"};

TEST(IsValidUploadId, AcceptsOnlyTheSafeAlphabet) {
  EXPECT_TRUE(IsValidUploadId("u_01H-abcXYZ"));
  EXPECT_TRUE(IsValidUploadId(std::string(128, 'a')));
  EXPECT_FALSE(IsValidUploadId(std::string(129, 'a')));
  EXPECT_FALSE(IsValidUploadId(""));
  for (const char* bad : {"a\"b", "a b", "a/b", "a.b", "a${x}", "ä", "a\\b"}) {
    EXPECT_FALSE(IsValidUploadId(bad)) << bad;
  }
}

TEST(CallbackBodyTemplate, IsExactAndNamesEverySystemVariable) {
  std::string body = CallbackBodyTemplate("up-1");
  EXPECT_EQ(body,
            "{\"upload_id\":\"up-1\",\"bucket\":${bucket},\"object\":${object},"
            "\"etag\":${etag},\"size\":${size},\"mimeType\":${mimeType},"
            "\"imageInfo.height\":${imageInfo.height},"
            "\"imageInfo.width\":${imageInfo.width},"
            "\"imageInfo.format\":${imageInfo.format},\"crc64\":${crc64},"
            "\"contentMd5\":${contentMd5},\"clientIp\":${clientIp},"
            "\"reqId\":${reqId},\"operation\":${operation}}");
  for (const char* name : kSystemVariables) {
    EXPECT_THAT(body, ::testing::HasSubstr(absl::StrCat("${", name, "}")));
  }
}

TEST(CallbackBodyTemplate, IsValidJsonOnceOssSubstitutesQuotedValues) {
  std::string body = CallbackBodyTemplate("up-1");
  for (const char* name : kSystemVariables) {
    absl::StrReplaceAll({{absl::StrCat("${", name, "}"),
                          absl::StrCat("\"value of ", name, "\"")}},
                        &body);
  }
  Json parsed = Json::parse(body, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << body;
  EXPECT_EQ(parsed["upload_id"], "up-1");
  EXPECT_EQ(parsed["object"], "value of object");
  EXPECT_EQ(parsed.size(), 14u);
}

TEST(CallbackBodyTemplateDeathTest, RejectsUnsafeUploadId) {
  EXPECT_DEATH(CallbackBodyTemplate("a\",\"x\":\"y"), "check failed");
}

TEST(BuildCallbackParam, DecodesToTheThreeMembers) {
  std::string url = "https://broker.example.com/v1/oss-callback?x=%E5%9B%9E";
  auto decoded = common::Base64Decode(BuildCallbackParam(url, "up-1"));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  Json parsed = Json::parse(*decoded, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << *decoded;
  ASSERT_TRUE(parsed.is_object());
  std::vector<std::string> names;
  for (const auto& [name, value] : parsed.items()) names.push_back(name);
  EXPECT_THAT(names, ::testing::ElementsAre("callbackUrl", "callbackBody",
                                            "callbackBodyType"));
  EXPECT_EQ(parsed["callbackUrl"], url);
  EXPECT_EQ(parsed["callbackBody"], CallbackBodyTemplate("up-1"));
  EXPECT_EQ(parsed["callbackBodyType"], "application/json");
  // Inner quotes are escaped as OSS expects (oss-protocol.md §4.5).
  EXPECT_THAT(*decoded,
              ::testing::HasSubstr(
                  "\"callbackBody\":\"{\\\"upload_id\\\":\\\"up-1\\\""));
}

TEST(CallbackParamBuilder, GivesTheSameBytesAsBuildCallbackParam) {
  for (const std::string& url : std::vector<std::string>
       {"https://broker.example.com/oss/callback", "http://127.0.0.1:8080/cb?src=oss&a=%22b%22",
        "https://b.example.com/a\\b/\"q\"/%E5%9B%9E"}) {
    CallbackParamBuilder builder(url);
    for (const std::string& id : std::vector<std::string>{"a", "b", "up_0192f1e2d3c4a1b2c3d4e5f60718293a4b5c", "X-_9",
                                 std::string(128, 'z')}) {
      EXPECT_EQ(builder.Build(id), BuildCallbackParam(url, id)) << url << " " << id;
    }
  }
}

TEST(CallbackParamBuilderDeathTest, RejectsUnsafeUploadId) {
  CallbackParamBuilder builder("https://broker.example.com/oss/callback");
  EXPECT_DEATH(builder.Build("a\",\"x\":\"y"), "check failed");
}

// JSON.stringify escapes the quotes of these bodies and nothing else (each
// holds no backslash or control character).
std::string QuotesEscaped(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"\"", "\\\""}});
}

// ali-oss's encodeCallback (JSON.stringify, then base64) for both of its
// vectors: a form body with callbackHost, callbackSNI and a URL with a query,
// and a JSON body with a non-ASCII URL. BuildCallbackParam for the same
// callback URL must give ali-oss's bytes once the members the broker sets
// differently are swapped in: its own body template, no callbackHost, no
// callbackSNI, and always a JSON body. Member order, separators, the URL and
// the escaping of the body must agree byte for byte.
TEST(BuildCallbackParam, SerialisesLikeAliOss) {
  const Json& vectors = testing::Vectors()["e_encodeCallback"];
  ASSERT_EQ(vectors.size(), 2u);
  for (const Json& v : vectors) {
    SCOPED_TRACE(v["name"].get<std::string>());
    const Json& option = v["inputs"]["callbackOption"];
    const std::string ali = v["outputs"]["callbackJsonDecoded"].get<std::string>();
    ASSERT_EQ(common::Base64Encode(ali), v["outputs"]["x-oss-callback"].get<std::string>());
    // ali-oss passed the URL through encodeURI; the broker takes it encoded.
    const std::string url = Json::parse(ali)["callbackUrl"].get<std::string>();

    std::string expected = ali;
    auto swap = [&expected](const std::string& from, const std::string& to) {
      EXPECT_THAT(expected, ::testing::HasSubstr(from));
      absl::StrReplaceAll({{from, to}}, &expected);
    };
    swap(absl::StrCat("\"callbackBody\":\"", QuotesEscaped(option["body"].get<std::string>()), "\""),
         absl::StrCat("\"callbackBody\":\"", QuotesEscaped(CallbackBodyTemplate("up-1")), "\""));
    if (option.contains("host")) {
      swap(absl::StrCat(",\"callbackHost\":\"", option["host"].get<std::string>(), "\""), "");
    }
    swap(absl::StrCat("\"callbackBodyType\":\"", option["contentType"].get<std::string>(), "\""),
         "\"callbackBodyType\":\"application/json\"");
    if (option.contains("callbackSNI")) swap(",\"callbackSNI\":true", "");

    const std::string param = BuildCallbackParam(url, "up-1");
    EXPECT_EQ(common::Base64Decode(param).value_or("<not base64>"), expected);
    EXPECT_EQ(param, common::Base64Encode(expected));
  }
}

TEST(BuildCallbackParamDeathTest, RejectsNonAsciiUrl) {
  EXPECT_DEATH(BuildCallbackParam("https://cb.example.com/回调", "up-1"),
               "check failed");
}

}  // namespace
}  // namespace uploadbroker::policy
