// oss-sim streams object bodies to disk and answers HEAD from metadata
// (issue 17 item 7). Against the real binary: the ETag of a streamed (and a
// chunked) PUT, and of a PostObject's file, is the MD5 of what was sent and
// GET returns those bytes;
// hostile bodies (Content-Length lying, over the limit, cut off, malformed
// chunks, a wrong Content-MD5, a bad signature, a forbidden overwrite) leave
// no object and no staging file; a concurrent HEAD sees the old object or
// the new one; a simulator killed mid-PUT shows no half object on restart.
#include <atomic>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "policy/post_policy.h"
#include "tests/osssim/sim_process.h"

namespace uploadbroker::osssim {
namespace {

using testing::Answer;
using testing::Curl;
using testing::FilesIn;
using testing::Raw;
using testing::SignedUrl;
using testing::SimProcess;
using testing::TargetOf;

class OssSimStreaming : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  void Start(std::vector<std::string> extra = {}) {
    sim_ = std::make_unique<SimProcess>(data_dir(), std::move(extra));
    ASSERT_NE(sim_->port(), 0) << sim_->StderrSoFar();
  }
  std::string data_dir() const { return dir_.File("sim"); }
  std::string Url(const std::string& method, const std::string& key) {
    return SignedUrl(sim_->port(), method, key);
  }
  // A raw PUT of `key` with these extra header lines and body bytes.
  // `signed_headers` are signed (V4 signs Content-MD5) and sent.
  std::string RawPut(const std::string& key, const std::string& headers, const std::string& body,
                     bool close_after_send = false,
                     std::vector<std::pair<std::string, std::string>> signed_headers = {}) {
    std::string sent;
    for (const auto& [name, value] : signed_headers) absl::StrAppend(&sent, name, ": ", value, "\r\n");
    std::string url = SignedUrl(sim_->port(), "PUT", key, testing::kSk, std::move(signed_headers));
    return Raw(sim_->port(),
               absl::StrCat("PUT ", TargetOf(url), " HTTP/1.1\r\nHost: 127.0.0.1\r\n", headers,
                            sent, "\r\n", body),
               close_after_send);
  }
  // Nothing was stored under `key` and nothing is left in staging (given a
  // moment for the server to notice a closed connection).
  void ExpectNoTrace(const std::string& key) {
    for (int i = 0; i < 100 && !FilesIn(data_dir() + "/.staging").empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(Curl("HEAD", Url("HEAD", key)).status, 404);
    EXPECT_TRUE(FilesIn(data_dir() + "/.staging").empty());
    std::vector<std::string> data;
    for (const std::string& f : FilesIn(data_dir() + "/devbucket")) {
      if (f.find(common::HexEncode(key)) != std::string::npos) data.push_back(f);
    }
    EXPECT_TRUE(data.empty()) << data.front();
  }

  uploadbroker::testing::TempDir dir_;
  std::unique_ptr<SimProcess> sim_;
};

TEST_F(OssSimStreaming, PutEtagIsTheMd5OfWhatWasSentAndGetReturnsIt) {
  Start();
  for (bool chunked : {false, true}) {
    const std::string key = chunked ? "chunked.bin" : "plain.bin";
    const uint64_t size = 20 * 1024 * 1024 + 17;
    std::string sent_md5;
    Answer put = Curl("PUT", Url("PUT", key), size, &sent_md5, chunked);
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.headers["etag"], absl::StrCat("\"", sent_md5, "\""));
    Answer head = Curl("HEAD", Url("HEAD", key));
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.headers["etag"], put.headers["etag"]);
    EXPECT_EQ(head.headers["content-length"], absl::StrCat(size));
    EXPECT_EQ(head.headers["x-oss-hash-crc64ecma"], put.headers["x-oss-hash-crc64ecma"]);
    Answer get = Curl("GET", Url("GET", key));
    ASSERT_EQ(get.status, 200);
    ASSERT_EQ(get.body.size(), size);
    EXPECT_EQ(absl::AsciiStrToUpper(common::HexEncode(common::Md5(get.body))), sent_md5);
  }
  EXPECT_TRUE(FilesIn(data_dir() + "/.staging").empty());
}

TEST_F(OssSimStreaming, AnEmptyPutIsAnEmptyObject) {
  Start();
  Answer put = Curl("PUT", Url("PUT", "empty"), 0);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.headers["etag"], "\"D41D8CD98F00B204E9800998ECF8427E\"");
  EXPECT_EQ(Curl("HEAD", Url("HEAD", "empty")).headers["content-length"], "0");
}

TEST_F(OssSimStreaming, ABodyShorterThanItsContentLengthLeavesNothing) {
  Start();
  RawPut("short", "Content-Length: 1000000\r\n", std::string(300000, 'x'), /*close=*/true);
  ExpectNoTrace("short");
}

// Refused on the first body bytes, whatever follows.
TEST_F(OssSimStreaming, AContentLengthOverTheLimitIsRefusedBeforeTheBody) {
  Start({"--max_object_bytes", "1048576"});
  std::string answer = RawPut("big", "Content-Length: 1048577\r\n", "first bytes");
  EXPECT_NE(answer.find(" 413 "), std::string::npos) << answer;
  ExpectNoTrace("big");
  // At the limit it is accepted.
  EXPECT_EQ(Curl("PUT", Url("PUT", "limit"), 1048576).status, 200);
}

TEST_F(OssSimStreaming, AChunkedBodyOverTheLimitIsRefusedMidStream) {
  Start({"--max_object_bytes", "1048576"});
  std::string body;
  for (int i = 0; i < 20; ++i) absl::StrAppend(&body, "10000\r\n", std::string(65536, 'y'), "\r\n");
  absl::StrAppend(&body, "0\r\n\r\n");
  std::string answer = RawPut("chunky", "Transfer-Encoding: chunked\r\n", body);
  EXPECT_NE(answer.find(" 413 "), std::string::npos) << answer.substr(0, 200);
  ExpectNoTrace("chunky");
}

TEST_F(OssSimStreaming, AMalformedOrCutOffChunkLeavesNothing) {
  Start();
  std::string answer = RawPut("bad-chunk", "Transfer-Encoding: chunked\r\n",
                              absl::StrCat("10\r\n", std::string(16, 'a'), "\r\nzz\r\n"));
  EXPECT_NE(answer.find(" 400 "), std::string::npos) << answer;
  ExpectNoTrace("bad-chunk");
  RawPut("cut-chunk", "Transfer-Encoding: chunked\r\n",
         absl::StrCat("100000\r\n", std::string(5000, 'a')), /*close=*/true);
  ExpectNoTrace("cut-chunk");
}

TEST_F(OssSimStreaming, AWrongContentMd5IsInvalidDigestAndStoresNothing) {
  Start();
  const std::string body(200000, 'm');
  std::string wrong = common::Base64Encode(common::Md5("something else"));
  std::string answer = RawPut("digest", absl::StrCat("Content-Length: ", body.size(), "\r\n"),
                              body, false, {{"Content-MD5", wrong}});
  EXPECT_NE(answer.find(" 400 "), std::string::npos) << answer;
  EXPECT_NE(answer.find("InvalidDigest"), std::string::npos) << answer;
  ExpectNoTrace("digest");
  std::string right = common::Base64Encode(common::Md5(body));
  answer = RawPut("digest", absl::StrCat("Content-Length: ", body.size(), "\r\n"), body, false,
                  {{"Content-MD5", right}});
  EXPECT_NE(answer.find(" 200 "), std::string::npos) << answer;
}

TEST_F(OssSimStreaming, ABadSignatureAfterTheBodyLeavesNothing) {
  Start();
  std::string url = SignedUrl(sim_->port(), "PUT", "unsigned", "not-the-secret");
  EXPECT_EQ(Curl("PUT", url, 3 * 1024 * 1024).status, 403);
  ExpectNoTrace("unsigned");
}

TEST_F(OssSimStreaming, AForbiddenOverwriteIs409AndKeepsTheOldObject) {
  Start();
  Answer first = Curl("PUT", Url("PUT", "once"), 1000);
  ASSERT_EQ(first.status, 200);
  std::string url = SignedUrl(sim_->port(), "PUT", "once", testing::kSk,
                              {{"x-oss-forbid-overwrite", "true"}});
  Answer second = Curl("PUT", url, 2 * 1024 * 1024, nullptr, false, {"x-oss-forbid-overwrite: true"});
  EXPECT_EQ(second.status, 409) << second.body;
  Answer head = Curl("HEAD", Url("HEAD", "once"));
  EXPECT_EQ(head.headers["etag"], first.headers["etag"]);
  EXPECT_EQ(head.headers["content-length"], "1000");
  EXPECT_TRUE(FilesIn(data_dir() + "/.staging").empty());
}

// While one object replaces another, every HEAD sees one of the two whole:
// the ETag and the size always belong together.
TEST_F(OssSimStreaming, AConcurrentHeadSeesTheOldOrTheNewObject) {
  Start();
  const uint64_t old_size = 1000;
  const uint64_t new_size = 48 * 1024 * 1024;
  Answer old_put = Curl("PUT", Url("PUT", "swap"), old_size);
  ASSERT_EQ(old_put.status, 200);
  std::atomic<bool> done{false};
  std::string new_etag;
  std::thread writer([&] {
    new_etag = Curl("PUT", Url("PUT", "swap"), new_size).headers["etag"];
    done = true;
  });
  std::set<std::string> seen;
  int heads = 0;
  while (!done || heads < 5) {
    Answer h = Curl("HEAD", Url("HEAD", "swap"));
    ASSERT_EQ(h.status, 200);
    seen.insert(h.headers["etag"] + "/" + h.headers["content-length"]);
    ++heads;
  }
  writer.join();
  Answer last = Curl("HEAD", Url("HEAD", "swap"));  // after the writer's answer
  seen.insert(last.headers["etag"] + "/" + last.headers["content-length"]);
  ASSERT_FALSE(new_etag.empty());
  std::set<std::string> allowed = {old_put.headers["etag"] + "/" + absl::StrCat(old_size),
                                   new_etag + "/" + absl::StrCat(new_size)};
  for (const std::string& s : seen) EXPECT_TRUE(allowed.count(s)) << s;
  EXPECT_TRUE(seen.count(new_etag + "/" + absl::StrCat(new_size)));
}

TEST_F(OssSimStreaming, ASimKilledMidPutShowsNoHalfObjectAfterRestart) {
  Start();
  ASSERT_EQ(Curl("PUT", Url("PUT", "kept"), 5000).status, 200);
  std::thread sender([&] {
    RawPut("half", "Content-Length: 100000000\r\n", std::string(8 * 1024 * 1024, 'h'));
  });
  // Until the staging file holds part of the body.
  for (int i = 0; i < 200 && FilesIn(data_dir() + "/.staging").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(FilesIn(data_dir() + "/.staging").empty());
  sim_->Kill();
  sender.join();
  Start();
  EXPECT_EQ(Curl("HEAD", Url("HEAD", "kept")).headers["content-length"], "5000");
  ExpectNoTrace("half");
}

// PostObject's file part, streamed: curl generates it (never whole in
// memory) and the stored ETag is its MD5; past the policy's
// content-length-range it is EntityTooLarge and nothing stays behind.
size_t GenerateFilePart(char* buffer, size_t size, size_t n, void* user) {
  return testing::Generate(buffer, size, n, user);
}

Answer PostForm(int port, const std::string& key, int64_t max_size, uint64_t file_size,
                std::string* sent_md5) {
  policy::PostPolicyInput in;
  in.bucket = testing::kBucket;
  in.key = key;
  in.max_size = max_size;
  in.now = absl::Now();
  in.expiration = in.now + absl::Minutes(5);
  in.region = "cn-hangzhou";
  policy::SignedPostForm form = policy::SignPostPolicy(in, {testing::kAk, testing::kSk});
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> c(curl_easy_init(), curl_easy_cleanup);
  curl_mime* mime = curl_mime_init(c.get());
  for (const auto& [name, value] : form.fields) {
    curl_mimepart* part = curl_mime_addpart(mime);
    curl_mime_name(part, name.c_str());
    curl_mime_data(part, value.c_str(), value.size());
  }
  testing::Generated g;
  g.size = file_size;
  curl_mimepart* file = curl_mime_addpart(mime);
  curl_mime_name(file, "file");
  curl_mime_filename(file, "big.bin");
  curl_mime_data_cb(file, static_cast<curl_off_t>(file_size), GenerateFilePart, nullptr, nullptr, &g);
  Answer a;
  std::string url = absl::StrCat("http://127.0.0.1:", port, "/", testing::kBucket);
  curl_slist* headers = curl_slist_append(nullptr, "Expect:");
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c.get(), CURLOPT_MIMEPOST, mime);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, testing::OnHeaderLine);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &a.headers);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, testing::OnBodyBytes);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &a.body);
  EXPECT_EQ(curl_easy_perform(c.get()), CURLE_OK);
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &a.status);
  curl_slist_free_all(headers);
  curl_mime_free(mime);
  *sent_md5 = absl::AsciiStrToUpper(common::HexEncode(g.md5.Final()));
  return a;
}

TEST_F(OssSimStreaming, PostObjectStreamsTheFilePart) {
  Start();
  const uint64_t size = 30 * 1024 * 1024 + 3;
  std::string sent_md5;
  Answer post = PostForm(sim_->port(), "form.bin", 64 << 20, size, &sent_md5);
  ASSERT_EQ(post.status, 200) << post.body;
  EXPECT_EQ(post.headers["etag"], absl::StrCat("\"", sent_md5, "\""));
  Answer head = Curl("HEAD", Url("HEAD", "form.bin"));
  EXPECT_EQ(head.headers["content-length"], absl::StrCat(size));
  EXPECT_EQ(head.headers["etag"], post.headers["etag"]);
  EXPECT_TRUE(FilesIn(data_dir() + "/.staging").empty());

  Answer big = PostForm(sim_->port(), "form-too-big.bin", 10 << 20, size, &sent_md5);
  EXPECT_EQ(big.status, 400);
  EXPECT_NE(big.body.find("EntityTooLarge"), std::string::npos) << big.body;
  ExpectNoTrace("form-too-big.bin");
}

}  // namespace
}  // namespace uploadbroker::osssim
