// Test helpers for oss-sim's streaming paths: the real oss-sim binary as a
// child process (so its memory can be read from /proc and it can be killed
// mid-upload), V4-presigned requests for it, libcurl PUT/HEAD/GET that
// generate and hash bodies on the fly (never holding them), and a raw socket
// for requests no well-behaved client sends. One test thread at a time.
#ifndef UPLOADBROKER_TESTS_OSSSIM_SIM_PROCESS_H_
#define UPLOADBROKER_TESTS_OSSSIM_SIM_PROCESS_H_

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "nlohmann/json.hpp"
#include "policy/presign.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace uploadbroker::osssim::testing {

inline constexpr char kAk[] = "LTAI5tStreamTestId";
inline constexpr char kSk[] = "stream-test-secret";
inline constexpr char kBucket[] = "devbucket";

// The oss-sim binary serving `data_dir` on a free port.
class SimProcess {
 public:
  explicit SimProcess(const std::string& data_dir, std::vector<std::string> extra = {}) {
    std::string ready = dir_.File("ready.json");
    std::vector<std::string> args = {UB_OSS_SIM_BIN,         "--listen",          "127.0.0.1:0",
                                     "--data_dir",           data_dir,            "--access_key_id",
                                     kAk,                    "--access_key_secret", kSk,
                                     "--ready_file",         ready};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<uploadbroker::testing::Subprocess>(args);
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(ready);
      nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_object() && j.contains("port")) port_ = j["port"].get<int>();
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  int port() const { return port_; }
  pid_t pid() const { return process_->pid(); }
  std::string StderrSoFar() const { return process_->StderrSoFar(); }
  void Kill() {
    process_->Signal(SIGKILL);
    process_->Wait();
  }
  // A /proc/<pid>/status field in KiB (VmHWM: peak resident memory).
  int64_t StatusKib(const std::string& field) const {
    std::ifstream in(absl::StrCat("/proc/", pid(), "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field + ":", 0) != 0) continue;
      int64_t kib = 0;
      std::string digits;
      for (char c : line) if (absl::ascii_isdigit(c)) digits.push_back(c);
      if (absl::SimpleAtoi(digits, &kib)) return kib;
    }
    return -1;
  }

 private:
  uploadbroker::testing::TempDir dir_;
  std::unique_ptr<uploadbroker::testing::Subprocess> process_;
  int port_ = 0;
};

// A V4-presigned URL for `method` on `key`, valid a minute.
inline std::string SignedUrl(int port, const std::string& method, const std::string& key,
                             const std::string& secret = kSk,
                             std::vector<std::pair<std::string, std::string>> headers = {}) {
  policy::PresignInput in;
  in.method = method;
  in.scheme = "http";
  in.host = absl::StrCat("127.0.0.1:", port);
  in.path_style = true;
  in.bucket = kBucket;
  in.key = key;
  in.headers = std::move(headers);
  in.now = absl::Now();
  in.expires = absl::Minutes(1);
  in.region = "cn-hangzhou";
  return policy::PresignV4(in, {kAk, secret}).url;
}

// The request-target of a URL from SignedUrl.
inline std::string TargetOf(const std::string& url) {
  return url.substr(url.find('/', std::string("http://").size()));
}

// Byte i of a generated body: deterministic, not compressible by accident.
inline char BodyByte(uint64_t i) { return static_cast<char>((i * 2654435761u) >> 13); }

struct Answer {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
  double seconds = 0;  // curl's total time
};

struct Generated {
  uint64_t size = 0;
  uint64_t sent = 0;
  common::Md5Hasher md5;
};

inline size_t OnHeaderLine(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string::npos) {
    (*static_cast<std::map<std::string, std::string>*>(out))[absl::AsciiStrToLower(
        line.substr(0, colon))] = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

inline size_t OnBodyBytes(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

inline size_t Generate(char* buffer, size_t size, size_t n, void* user) {
  auto* g = static_cast<Generated*>(user);
  size_t count = static_cast<size_t>(std::min<uint64_t>(size * n, g->size - g->sent));
  for (size_t i = 0; i < count; ++i) buffer[i] = BodyByte(g->sent + i);
  g->md5.Update(absl::string_view(buffer, count));
  g->sent += count;
  return count;
}

// Runs `method` on `url` with curl; a PUT sends `put_size` generated bytes
// (chunked when `chunked`), whose MD5 (hex, uppercase) goes to *sent_md5.
// A GET's body is hashed into *got_md5 instead of kept when that is set.
inline Answer Curl(const std::string& method, const std::string& url, uint64_t put_size = 0,
                   std::string* sent_md5 = nullptr, bool chunked = false,
                   std::vector<std::string> extra_headers = {}) {
  Answer a;
  Generated g;
  g.size = put_size;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> c(curl_easy_init(), curl_easy_cleanup);
  curl_slist* headers = curl_slist_append(nullptr, "Expect:");
  if (chunked) headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  for (const std::string& h : extra_headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, 600000L);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, OnHeaderLine);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &a.headers);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, OnBodyBytes);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &a.body);
  if (method == "HEAD") {
    curl_easy_setopt(c.get(), CURLOPT_NOBODY, 1L);
  } else if (method == "PUT") {
    curl_easy_setopt(c.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c.get(), CURLOPT_READFUNCTION, Generate);
    curl_easy_setopt(c.get(), CURLOPT_READDATA, &g);
    if (!chunked) {
      curl_easy_setopt(c.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(put_size));
    }
  } else if (method != "GET") {
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  CURLcode rc = curl_easy_perform(c.get());
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) a.status = -static_cast<long>(rc);
  else curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &a.status);
  curl_easy_getinfo(c.get(), CURLINFO_TOTAL_TIME, &a.seconds);
  if (sent_md5 != nullptr) *sent_md5 = absl::AsciiStrToUpper(common::HexEncode(g.md5.Final()));
  return a;
}

// Sends `bytes` on a new connection, then reads the answer until the server
// closes or `wait` passes (with `close_after_send`, closes without reading).
inline std::string Raw(int port, const std::string& bytes, bool close_after_send = false,
                       std::chrono::milliseconds wait = std::chrono::seconds(5)) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  std::string answer;
  if (!close_after_send) {
    timeval tv{static_cast<time_t>(wait.count() / 1000),
               static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) answer.append(buffer, n);
  }
  ::close(fd);
  return answer;
}

// Files in `dir` (recursively), e.g. what .staging holds.
inline std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(it->path().string());
  }
  return out;
}

}  // namespace uploadbroker::osssim::testing

#endif  // UPLOADBROKER_TESTS_OSSSIM_SIM_PROCESS_H_
