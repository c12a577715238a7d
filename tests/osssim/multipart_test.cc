// GMime-backed multipart/form-data parsing as PostObject needs it: order,
// binary bodies byte for byte, file names and types, limits, garbage.
#include "osssim/multipart.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

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

// The file part's bytes as ParseFormFile stores them, for a form staged as
// oss-sim stages one (FormEntityHead, then the body).
std::string StoredFile(const std::string& content_type, const std::string& body) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              absl::StrCat("ub-multipart-test-", ::getpid());
  auto staged = StagedFile::Create(dir.string(), 1 << 20, /*md5=*/false);
  auto file = StagedFile::Create(dir.string(), 1 << 20);
  EXPECT_TRUE(staged.ok() && file.ok());
  EXPECT_TRUE((*staged)->Write(absl::StrCat(FormEntityHead(content_type), body)).ok());
  EXPECT_TRUE((*staged)->Finish().ok());
  auto parts = ParseFormFile(content_type, (*staged)->path(), **file);
  EXPECT_TRUE(parts.ok()) << parts.status();
  EXPECT_TRUE((*file)->Finish().ok());
  std::ifstream in((*file)->path(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return bytes;
}

// A form ends with the close delimiter; the CRLF after it is optional
// (RFC 2046 §5.1.1: `close-delimiter transport-padding [CRLF epilogue]`).
// Node 18's fetch sends none, Node 20's sends one, curl sends one. The file
// must come out the same either way, whatever its last bytes are.
TEST(Multipart, FileBytesDoNotDependOnACrlfAfterTheCloseDelimiter) {
  const std::string type = "multipart/form-data; boundary=----formdata-undici-012345678901";
  const std::string dash = "------formdata-undici-012345678901";
  const std::vector<std::string> files = {
      "hello", "hello\r", "hello\n", "hello\r\n", "\r\n", "\r", "",
      std::string("a\r\n------formdata-undici-0123\0\xff\r\n", 33),
      std::string(70000, '\x5a') + "\r"};
  for (const std::string& data : files) {
    for (const std::string& after : {std::string(""), std::string("\r\n")}) {
      std::string body = absl::StrCat(
          dash, "\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/form.bin\r\n",
          dash, "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"form.bin\"\r\n",
          "Content-Type: application/octet-stream\r\n\r\n", data, "\r\n", dash, "--", after);
      SCOPED_TRACE(absl::StrCat("file of ", data.size(), " bytes, ", after.size(),
                                " bytes after the close delimiter"));
      auto parts = ParseFormData(type, body);
      ASSERT_TRUE(parts.ok()) << parts.status();
      ASSERT_EQ(parts->size(), 2u);
      EXPECT_EQ((*parts)[0].value, "uploads/form.bin");
      EXPECT_EQ((*parts)[1].value, data);
      EXPECT_EQ(StoredFile(type, body), data);
    }
  }
}

}  // namespace
}  // namespace uploadbroker::osssim
