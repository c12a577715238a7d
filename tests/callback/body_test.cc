#include "callback/body.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace uploadbroker::callback {
namespace {

constexpr absl::string_view kJson = "application/json";
constexpr absl::string_view kForm = "application/x-www-form-urlencoded";

std::string ErrorOf(absl::string_view type, absl::string_view body) {
  absl::StatusOr<CallbackFields> f = ParseCallbackBody(type, body);
  if (f.ok()) return "ok";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(f.status().message());
}

TEST(ParseCallbackBody, JsonWithNumbers) {
  absl::StatusOr<CallbackFields> f = ParseCallbackBody(kJson, R"({
    "upload_id":"u-1","bucket":"examplebucket","object":"uploads/a b.png",
    "etag":"D8E8FCA2DC0F896FD7CB4CB0031BA249","size":1048576,"mimeType":"image/png",
    "imageInfo.height":480,"imageInfo.width":640,"imageInfo.format":"png",
    "crc64":18446744073709551615,"contentMd5":"2Oj8otwPiW/Xy0ywAxuiSQ==",
    "clientIp":"203.0.113.7","reqId":"5F1E0A","operation":"PutObject",
    "vpcId":"","x:ignored":{"deep":[1,2,3]}})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->upload_id, "u-1");
  EXPECT_EQ(f->bucket, "examplebucket");
  EXPECT_EQ(f->object, "uploads/a b.png");
  EXPECT_EQ(f->etag, "D8E8FCA2DC0F896FD7CB4CB0031BA249");
  EXPECT_EQ(f->size, 1048576);
  EXPECT_EQ(f->mime_type, "image/png");
  EXPECT_EQ(f->image_height, "480");
  EXPECT_EQ(f->image_width, "640");
  EXPECT_EQ(f->image_format, "png");
  EXPECT_EQ(f->crc64, "18446744073709551615");
  EXPECT_EQ(f->content_md5, "2Oj8otwPiW/Xy0ywAxuiSQ==");
  EXPECT_EQ(f->client_ip, "203.0.113.7");
  EXPECT_EQ(f->req_id, "5F1E0A");
  EXPECT_EQ(f->operation, "PutObject");
}

TEST(ParseCallbackBody, JsonWithStrings) {
  absl::StatusOr<CallbackFields> f = ParseCallbackBody(
      kJson, R"({"upload_id":"u-1","bucket":"b","object":"o","size":"5",)"
             R"("crc64":"123","imageInfo.height":"","imageInfo.width":"",)"
             R"("imageInfo.format":"","contentMd5":null})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->size, 5);
  EXPECT_EQ(f->crc64, "123");
  EXPECT_EQ(f->image_height, "");
  EXPECT_EQ(f->content_md5, "");
  EXPECT_EQ(f->etag, "");  // Missing optional field.
}

TEST(ParseCallbackBody, JsonNestedImageInfo) {
  absl::StatusOr<CallbackFields> f = ParseCallbackBody(
      kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":0,)"
             R"("imageInfo":{"height":"10","width":20,"format":"jpg"}})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->size, 0);
  EXPECT_EQ(f->image_height, "10");
  EXPECT_EQ(f->image_width, "20");
  EXPECT_EQ(f->image_format, "jpg");
}

TEST(ParseCallbackBody, JsonImageInfoGivenFlatAndNestedIsRefused) {
  EXPECT_EQ(
      ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":0,)"
                     R"("imageInfo.height":1,"imageInfo":{"height":2}})"),
      "imageInfo.height: given twice");
}

TEST(ParseCallbackBody, JsonUnicodeObjectKey) {
  absl::StatusOr<CallbackFields> f = ParseCallbackBody(
      kJson,
      R"({"upload_id":"u","bucket":"b","object":"\u4e2d/\"q\".txt","size":1})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->object, "\xE4\xB8\xAD/\"q\".txt");
}

TEST(ParseCallbackBody, ContentTypeParametersAndCaseAreIgnored) {
  EXPECT_EQ(ErrorOf("Application/JSON; charset=utf-8",
                    R"({"upload_id":"u","bucket":"b","object":"o","size":1})"),
            "ok");
  EXPECT_EQ(ErrorOf(" application/x-www-form-urlencoded ;charset=UTF-8",
                    "upload_id=u&bucket=b&object=o&size=1"),
            "ok");
}

TEST(ParseCallbackBody, FormDecodesPercentUtf8AndPlus) {
  absl::StatusOr<CallbackFields> f = ParseCallbackBody(
      kForm,
      "bucket=callback-test&object=dir%2F%E4%B8%AD+file.txt&etag=D8E8&size=5"
      "&mimeType=text%2Fplain&imageInfo.height=&imageInfo.width=&imageInfo."
      "format="
      "&x:var1=for-callback-test&upload_id=u-1");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->object, "dir/\xE4\xB8\xAD file.txt");
  EXPECT_EQ(f->mime_type, "text/plain");
  EXPECT_EQ(f->bucket, "callback-test");
  EXPECT_EQ(f->upload_id, "u-1");
  EXPECT_EQ(f->size, 5);
  EXPECT_EQ(f->image_height, "");
}

TEST(ParseCallbackBody, FormKeepsEqualsInValueAndLiteralPercent2B) {
  absl::StatusOr<CallbackFields> f =
      ParseCallbackBody(kForm, "upload_id=a=b&bucket=b&object=c%2Bd&size=1");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->upload_id, "a=b");
  EXPECT_EQ(f->object, "c+d");
}

TEST(ParseCallbackBody, FormBadEscapeNamesField) {
  EXPECT_EQ(ErrorOf(kForm, "upload_id=u&bucket=b&object=a%zz&size=1"),
            "object: bad percent escape");
}

TEST(ParseCallbackBody, FormRepeatedFieldIsRefused) {
  EXPECT_EQ(ErrorOf(kForm, "upload_id=u&bucket=b&object=o&size=1&bucket=c"),
            "bucket: given twice");
}

TEST(ParseCallbackBody, JsonDuplicateKeyIsRefused) {
  EXPECT_EQ(
      ErrorOf(
          kJson,
          R"({"upload_id":"u","bucket":"b","object":"o","size":1,"object":"p"})"),
      "object: given twice");
}

TEST(ParseCallbackBody, MissingUploadId) {
  EXPECT_EQ(ErrorOf(kJson, R"({"bucket":"b","object":"o","size":1})"),
            "upload_id: missing");
  EXPECT_EQ(ErrorOf(kJson,
                    R"({"upload_id":null,"bucket":"b","object":"o","size":1})"),
            "upload_id: missing");
  EXPECT_EQ(ErrorOf(kForm, "bucket=b&object=o&size=1"), "upload_id: missing");
  EXPECT_EQ(ErrorOf(kForm, "upload_id=&bucket=b&object=o&size=1"),
            "upload_id: empty");
}

TEST(ParseCallbackBody, MissingObjectAndSize) {
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","size":1})"),
            "object: missing");
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o"})"),
            "size: missing");
}

TEST(ParseCallbackBody, SizeMustBeNonNegativeInteger) {
  auto json = [](absl::string_view size) {
    return ErrorOf(
        kJson,
        std::string(R"({"upload_id":"u","bucket":"b","object":"o","size":)") +
            std::string(size) + "}");
  };
  EXPECT_EQ(json("-1"), "size: not a non-negative integer");
  EXPECT_EQ(json("\"-1\""), "size: not a non-negative integer");
  EXPECT_EQ(json("1.5"), "size: not a non-negative integer");
  EXPECT_EQ(json("1e3"), "size: not a non-negative integer");
  EXPECT_EQ(json("true"), "size: not a non-negative integer");
  EXPECT_EQ(json("\"12abc\""), "size: not a non-negative integer");
  EXPECT_EQ(json("\" 12\""), "size: not a non-negative integer");
  EXPECT_EQ(json("\"+12\""), "size: not a non-negative integer");
  EXPECT_EQ(json("\"\""), "size: empty");
  EXPECT_EQ(json("9223372036854775807"), "ok");
  EXPECT_EQ(json("9223372036854775808"), "size: out of range");
  EXPECT_EQ(json("\"9223372036854775808\""), "size: out of range");
  EXPECT_EQ(json("99999999999999999999999"),
            "size: not a non-negative integer");
  EXPECT_EQ(ErrorOf(kForm, "upload_id=u&bucket=b&object=o&size=abc"),
            "size: not a non-negative integer");
  EXPECT_EQ(ErrorOf(kForm, "upload_id=u&bucket=b&object=o&size=-5"),
            "size: not a non-negative integer");
  EXPECT_EQ(
      ErrorOf(kForm, "upload_id=u&bucket=b&object=o&size=18446744073709551616"),
      "size: out of range");
}

TEST(ParseCallbackBody, WrongJsonTypes) {
  EXPECT_EQ(
      ErrorOf(kJson, R"({"upload_id":1,"bucket":"b","object":"o","size":1})"),
      "upload_id: not a string");
  EXPECT_EQ(
      ErrorOf(
          kJson,
          R"({"upload_id":"u","bucket":"b","object":"o","size":1,"crc64":[1]})"),
      "crc64: not an integer or string");
  EXPECT_EQ(
      ErrorOf(
          kJson,
          R"({"upload_id":"u","bucket":"b","object":"o","size":1,"imageInfo":5})"),
      "imageInfo: not an object");
}

// The JSON reader keeps only known fields at the top level and inside a
// top-level imageInfo; everything else is skipped but still checked for
// duplicate keys.
TEST(ParseCallbackBody, JsonFieldsCountOnlyWhereTheyBelong) {
  auto fields = ParseCallbackBody(
      kJson,
      R"({"x":{"size":"junk","upload_id":7},"y":[{"object":1},"bucket"],)"
      R"("upload_id":"u","bucket":"b","object":"o","size":3,)"
      R"("imageInfo":{"upload_id":"zz","height":"4","deep":{"width":9}},)"
      R"("z":{"imageInfo":{"height":[]}}})");
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(fields->upload_id, "u");
  EXPECT_EQ(fields->bucket, "b");
  EXPECT_EQ(fields->object, "o");
  EXPECT_EQ(fields->size, 3);
  EXPECT_EQ(fields->image_height, "4");
  EXPECT_EQ(fields->image_width, "");
}

TEST(ParseCallbackBody, JsonDuplicateKeysAreRefusedAtAnyDepth) {
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":1,)"
                           R"("x":[{"k":1,"k":2}]})"),
            "k: given twice");
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":1,)"
                           R"("imageInfo":{"width":1,"width":1}})"),
            "width: given twice");
  // The same key in different objects is fine.
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":1,)"
                           R"("a":{"k":1},"b":{"k":1}})"),
            "ok");
}

TEST(ParseCallbackBody, JsonSizeOfEveryWrongKind) {
  for (const char* size : {"{}", "[1]", "1.5", "true", "-3", "\"-3\"", "1e3",
                           "18446744073709551616"}) {
    EXPECT_EQ(ErrorOf(kJson, absl::StrCat(R"({"upload_id":"u","bucket":"b","object":"o","size":)",
                                          size, "}")),
              "size: not a non-negative integer")
        << size;
  }
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":null})"),
            "size: missing");
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":1,)"
                           R"("imageInfo":{"height":{}}})"),
            "imageInfo.height: not an integer or string");
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u","bucket":"b","object":"o","size":1,)"
                           R"("imageInfo":null,"imageInfo.width":"2"})"),
            "ok");
}

TEST(ParseCallbackBody, InvalidJson) {
  EXPECT_EQ(ErrorOf(kJson, R"({"upload_id":"u",)"), "body: not valid JSON");
  EXPECT_EQ(ErrorOf(kJson, ""), "body: not valid JSON");
  EXPECT_EQ(ErrorOf(kJson, R"({"a":1} {"b":2})"), "body: not valid JSON");
  EXPECT_EQ(ErrorOf(kJson, R"(["upload_id"])"), "body: not a JSON object");
}

TEST(ParseCallbackBody, DeeplyNestedJsonDoesNotCrash) {
  std::string deep =
      R"({"upload_id":"u","bucket":"b","object":"o","size":1,"x":)" +
      std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(ErrorOf(kJson, deep), "ok");
}

TEST(ParseCallbackBody, UnsupportedContentType) {
  EXPECT_EQ(ErrorOf("text/plain", "upload_id=u"),
            "Content-Type: unsupported 'text/plain'");
  EXPECT_EQ(ErrorOf("text/plain; charset=utf-8", "x"),
            "Content-Type: unsupported 'text/plain'");
  EXPECT_EQ(ErrorOf("application/jsonx", "{}"),
            "Content-Type: unsupported 'application/jsonx'");
  EXPECT_EQ(ErrorOf("", "{}"), "Content-Type: missing");
}

TEST(ParseCallbackBody, InvalidUtf8ObjectKeyIsRefused) {
  EXPECT_EQ(ErrorOf(kForm, "upload_id=u&bucket=b&object=%FF%FE&size=1"),
            "object: not valid UTF-8");
  EXPECT_EQ(
      ErrorOf(kForm,
              "upload_id=u&bucket=b&object=%C0%AF&size=1"),  // Overlong '/'.
      "object: not valid UTF-8");
  EXPECT_EQ(
      ErrorOf(kForm,
              "upload_id=u&bucket=b&object=%ED%A0%80&size=1"),  // Surrogate.
      "object: not valid UTF-8");
  EXPECT_EQ(ErrorOf(kForm,
                    "upload_id=u&bucket=b&object=%E4%B8&size=1"),  // Truncated.
            "object: not valid UTF-8");
  EXPECT_EQ(
      ErrorOf(
          kForm,
          "upload_id=u&bucket=b&object=%F4%90%80%80&size=1"),  // > U+10FFFF.
      "object: not valid UTF-8");
  EXPECT_EQ(ErrorOf(kJson,
                    "{\"upload_id\":\"u\",\"bucket\":\"b\",\"object\":\"\xFF\","
                    "\"size\":1}"),
            "body: not valid JSON");
}

TEST(ParseCallbackBody, ValidUtf8OfEveryLengthIsAccepted) {
  absl::StatusOr<CallbackFields> f =
      ParseCallbackBody(kForm,
                        "upload_id=u&bucket=b&object=a%C3%A9%E4%B8%AD%F0%9F%98%"
                        "80%F4%8F%BF%BF&size=1");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->object, "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF");
}

}  // namespace
}  // namespace uploadbroker::callback
