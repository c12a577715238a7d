// GMime-backed multipart/form-data parsing as PostObject needs it: order,
// binary bodies byte for byte, file names and types, limits, garbage.
#include "osssim/multipart.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace uploadbroker::osssim {
namespace {

std::string Part(const std::string& name, const std::string& value, const std::string& extra = "") {
  return absl::StrCat("--XyZ\r\nContent-Disposition: form-data; name=\"", name, "\"", extra,
                      "\r\n\r\n", value, "\r\n");
}

TEST(Multipart, KeepsOrderAndBinaryBytes) {
  std::string binary("a\r\n--XyZ-not\0\xff\r\nb\r\n", 19);
  std::string body = absl::StrCat(Part("key", "uploads/ключ"), Part("x:v", ""),
                                  "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
                                  "filename=\"f.bin\"\r\nContent-Type: image/png\r\n\r\n",
                                  binary, "\r\n--XyZ--\r\n");
  auto parts = ParseFormData("multipart/form-data; boundary=XyZ", body);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0].name, "key");
  EXPECT_EQ((*parts)[0].value, "uploads/ключ");
  EXPECT_EQ((*parts)[1].value, "");
  EXPECT_EQ((*parts)[2].filename, "f.bin");
  EXPECT_EQ((*parts)[2].content_type, "image/png");
  EXPECT_EQ((*parts)[2].value, binary);
}

TEST(Multipart, RejectsWrongTypeGarbageAndOversizedFields) {
  EXPECT_FALSE(ParseFormData("text/plain", "x").ok());
  EXPECT_FALSE(ParseFormData("multipart/form-data; boundary=XyZ", "garbage").ok());
  EXPECT_FALSE(ParseFormData("multipart/form-data; boundary=XyZ",
                             absl::StrCat("--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--\r\n"))
                   .ok());
  FormLimits limits;
  limits.max_value_bytes = 4;
  std::string body = absl::StrCat(Part("key", "12345"), "--XyZ--\r\n");
  EXPECT_FALSE(ParseFormData("multipart/form-data; boundary=XyZ", body, limits).ok());
  std::string file_only = absl::StrCat(Part("file", "123456789"), "--XyZ--\r\n");
  EXPECT_TRUE(ParseFormData("multipart/form-data; boundary=XyZ", file_only, limits).ok());
}

}  // namespace
}  // namespace uploadbroker::osssim
