// callback_load: a load generator for the broker's OSS callback endpoint
// (bench/callback_bench.sh drives it).
//
//   1. Setup (skipped with --no-setup): creates --count intents through the
//      broker's gRPC CreatePostPolicy, from --setup-concurrency threads.
//      With --sim-data DIR (the data directory of an oss-sim the broker's
//      bucket points at), each intent's object is also stored there, so a
//      broker that confirms completions with HeadObject finds it; the
//      callbacks then report that object's real ETag and size.
//   2. Pre-builds one distinct signed callback per intent, the way OSS builds
//      it: JSON body, Authorization = base64(RSA PKCS#1 v1.5 MD5 signature
//      over decoded path + '?' + query (if any) + '\n' + body), and
//      x-oss-pub-key-url = base64(--key-url).
//   3. Sends them over --concurrency connections. By default each callback
//      gets a NEW TCP connection and says `Connection: close` (as OSS does);
//      with --keep-alive each connection carries many callbacks.
//
// Latency is measured per callback from the start of connect (new-connection
// mode, and the first callback of a keep-alive connection) or from the start
// of the write (later keep-alive callbacks) to the last byte of the answer.
// Prints one line of key=value pairs on stdout:
//   label mode conc n ok non200 errors unsent elapsed_s rps p50_ms p99_ms
//   p999_ms max_ms server_cpu_us client_cpu_us statuses
// server_cpu_us is the CPU time the --server-pids processes used during the
// send phase per callback (clock-tick resolution), client_cpu_us this tool's:
// unlike rates, they hardly move when other processes share the machine.
// Only 200 counts as ok, for the broker and for a plain HTTP server (--no-setup)
// alike; other statuses and connection errors are counted and the first few
// printed on stderr. Exit status 0 when every callback got 200, 1 otherwise.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <functional>
#include <optional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/broker_client.h"
#include "common/encoding.h"
#include "nlohmann/json.hpp"
#include "osssim/object_store.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string http = "127.0.0.1:8080";  // callback listener host:port
  std::string grpc;                     // broker gRPC host:port (setup)
  std::string api_key;
  std::string api_key_file;
  std::string key_file;  // RSA private key (PEM) whose public half the broker trusts
  std::string key_url = "http://127.0.0.1:9/bench_pub_key.pem";
  std::string path = "/oss/callback";  // signed path (decoded) and request target
  std::string query;                   // raw query, without '?'
  std::string host = "broker.example.com";
  std::string bucket = "bench";
  std::string prefix = "bench/";
  std::string mime = "image/png";
  std::string label;
  std::string server_pids;  // comma-separated: report their CPU per callback
  std::string sim_data;     // oss-sim data directory to store each intent's object in
  int64_t size = 12345;
  int count = 10000;
  int concurrency = 16;
  int threads = 1;  // client I/O threads
  int setup_concurrency = 32;
  int timeout_s = 120;  // whole send phase
  bool keep_alive = false;
  bool setup = true;
};

[[noreturn]] void Usage(const std::string& msg) {
  std::cerr << "callback_load: " << msg << "\n"
            << "usage: callback_load --http HOST:PORT --key PRIVATE.pem [--grpc HOST:PORT --api-key K | "
               "--api-key-file F | --no-setup]\n"
               "  [--count N] [--concurrency C] [--keep-alive] [--threads T] [--key-url URL]\n"
               "  [--path /oss/callback] [--query Q] [--bucket B] [--prefix P] [--label L]\n"
               "  [--setup-concurrency S] [--timeout SECONDS] [--server-pids PID,PID...]\n"
               "  [--sim-data OSS_SIM_DATA_DIR]\n";
  std::exit(2);
}

Options ParseFlags(int argc, char** argv) {
  Options o;
  std::map<std::string, std::string*> strings = {
      {"http", &o.http},        {"grpc", &o.grpc},       {"api-key", &o.api_key},
      {"api-key-file", &o.api_key_file}, {"key", &o.key_file}, {"key-url", &o.key_url},
      {"path", &o.path},        {"query", &o.query},     {"host", &o.host},
      {"bucket", &o.bucket},    {"prefix", &o.prefix},   {"mime", &o.mime},
      {"label", &o.label},      {"server-pids", &o.server_pids}, {"sim-data", &o.sim_data}};
  std::map<std::string, int*> ints = {{"count", &o.count},
                                      {"concurrency", &o.concurrency},
                                      {"threads", &o.threads},
                                      {"setup-concurrency", &o.setup_concurrency},
                                      {"timeout", &o.timeout_s}};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--keep-alive") { o.keep_alive = true; continue; }
    if (arg == "--no-setup") { o.setup = false; continue; }
    if (arg == "--help" || arg == "-h") Usage("help");
    absl::string_view a = arg;
    if (!absl::ConsumePrefix(&a, "--")) Usage("unexpected argument " + arg);
    std::string name(a), value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else {
      if (i + 1 >= argc) Usage("--" + name + " needs a value");
      value = argv[++i];
    }
    if (auto s = strings.find(name); s != strings.end()) {
      *s->second = value;
    } else if (auto n = ints.find(name); n != ints.end()) {
      *n->second = std::atoi(value.c_str());
    } else if (name == "size") {
      o.size = std::atoll(value.c_str());
    } else {
      Usage("unknown flag --" + name);
    }
  }
  if (o.key_file.empty()) Usage("--key is required");
  if (o.count <= 0 || o.concurrency <= 0 || o.threads <= 0) Usage("counts must be positive");
  if (o.setup && o.grpc.empty()) Usage("--grpc is required unless --no-setup");
  if (!o.api_key_file.empty()) {
    std::ifstream in(o.api_key_file);
    std::getline(in, o.api_key);
  }
  if (o.label.empty()) o.label = o.setup ? "broker" : "plain";
  return o;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Usage("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

PkeyPtr LoadKey(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!key) Usage("not a PEM private key");
  return key;
}

// RSASSA-PKCS1-v1_5 over MD5, as OSS signs callbacks.
std::string Sign(EVP_PKEY* key, const std::string& data) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_md5(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) {
    Usage("signing failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in, data.size()) != 1) {
    Usage("signing failed");
  }
  sig.resize(len);
  return sig;
}

// Runs fn(i) for i in [0, n) on `threads` threads.
template <typename Fn>
void ParallelFor(int n, int threads, Fn fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, threads); ++t) {
    pool.emplace_back([&] {
      for (int i; (i = next.fetch_add(1)) < n;) fn(i);
    });
  }
  for (auto& th : pool) th.join();
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Phase 1: one intent per callback. Returns {upload_id, key} pairs.
std::vector<std::pair<std::string, std::string>> CreateIntents(const Options& o, const std::string& run_id) {
  std::vector<std::pair<std::string, std::string>> intents(o.count);
  uploadbroker::client::BrokerClient client(o.grpc, o.api_key, absl::Seconds(30));
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_error;
  ParallelFor(o.count, o.setup_concurrency, [&](int i) {
    uploadbroker::v1::CreatePostPolicyRequest req;
    req.set_bucket(o.bucket);
    req.set_key(absl::StrCat(o.prefix, run_id, "/", i, ".bin"));
    (*req.mutable_metadata())["bench"] = run_id;
    auto resp = client.CreatePostPolicy(req);
    if (!resp.ok()) {
      failures.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = resp.status().ToString();
      return;
    }
    intents[i] = {resp->upload_id(), resp->key()};
  });
  if (failures > 0) {
    std::cerr << "callback_load: " << failures << " CreatePostPolicy calls failed, first: " << first_error
              << "\n";
    std::exit(2);
  }
  return intents;
}

// Phase 1b (--sim-data): stores each intent's object (--size bytes, --mime)
// in oss-sim's data directory; returns their ETag, without quotes.
std::string StoreObjects(const Options& o, const std::vector<std::pair<std::string, std::string>>& intents) {
  uploadbroker::osssim::ObjectStore store(o.sim_data);
  const std::string data(static_cast<size_t>(o.size), 'b');
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string etag;
  ParallelFor(static_cast<int>(intents.size()), 1, [&](int i) {
    auto info = store.Put(o.bucket, intents[i].second, data, o.mime, {});
    if (!info.ok()) {
      failures.fetch_add(1);
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    etag = info->etag.substr(1, info->etag.size() - 2);
  });
  if (failures > 0) {
    std::cerr << "callback_load: " << failures << " objects could not be stored in " << o.sim_data << "\n";
    std::exit(2);
  }
  return etag;
}

// Phase 2: the raw HTTP requests, signed.
std::vector<std::string> BuildRequests(const Options& o, const std::string& run_id,
                                       const std::vector<std::pair<std::string, std::string>>& intents,
                                       const std::string& etag) {
  std::vector<std::string> requests(o.count);
  std::string pem = ReadFile(o.key_file);
  std::string key_url_b64 = uploadbroker::common::Base64Encode(o.key_url);
  // OSS signs the decoded path; --path is sent as given, so keep it plain.
  std::string target = o.query.empty() ? o.path : absl::StrCat(o.path, "?", o.query);
  const std::string& signed_prefix = target;
  const char* connection = o.keep_alive ? "keep-alive" : "close";
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      PkeyPtr key = LoadKey(pem);  // one per thread
      for (int i; (i = next.fetch_add(1)) < o.count;) {
        std::string id = o.setup ? intents[i].first : absl::StrCat("bench-", run_id, "-", i);
        std::string object = o.setup ? intents[i].second : absl::StrCat(o.prefix, run_id, "/", i, ".bin");
        std::string body = nlohmann::json{{"upload_id", id},
                                          {"bucket", o.bucket},
                                          {"object", object},
                                          {"etag", etag},
                                          {"size", o.size},
                                          {"mimeType", o.mime},
                                          {"imageInfo.height", ""},
                                          {"imageInfo.width", ""},
                                          {"imageInfo.format", ""},
                                          {"crc64", "4639301932546781452"},
                                          {"contentMd5", "2Oj8otwPiW/Xy0ywAxuiSQ=="},
                                          {"clientIp", "203.0.113.7"},
                                          {"reqId", absl::StrCat("BENCH", run_id, i)},
                                          {"operation", "PostObject"}}
                               .dump();
        std::string auth =
            uploadbroker::common::Base64Encode(Sign(key.get(), absl::StrCat(signed_prefix, "\n", body)));
        requests[i] = absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: ", o.host,
                                   "\r\nUser-Agent: aliyun-oss-callback\r\nConnection: ", connection,
                                   "\r\nAuthorization: ", auth, "\r\nx-oss-pub-key-url: ", key_url_b64,
                                   "\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                                   "\r\n\r\n", body);
      }
    });
  }
  for (auto& th : pool) th.join();
  return requests;
}

// Phase 3 state shared by all connections.
struct Shared {
  const std::vector<std::string>* requests = nullptr;
  tcp::endpoint endpoint;
  bool keep_alive = false;
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::function<void()> all_done;  // called once, when done reaches the count
  void Finished() {
    if (done.fetch_add(1) + 1 == static_cast<int>(requests->size())) all_done();
  }
  std::mutex mu;
  std::vector<std::string> samples;  // first few failures, for the report
  void Sample(std::string s) {
    std::lock_guard<std::mutex> lock(mu);
    if (samples.size() < 5) samples.push_back(std::move(s));
  }
};

// One connection slot: takes the next callback, sends it, reads the answer,
// repeats. New-connection mode opens and closes a socket per callback.
class Slot : public std::enable_shared_from_this<Slot> {
 public:
  Slot(asio::io_context& ioc, Shared& shared) : ioc_(ioc), shared_(shared), socket_(ioc) {}

  void Next() {
    index_ = shared_.next.fetch_add(1);
    if (index_ >= static_cast<int>(shared_.requests->size())) {
      beast::error_code ec;
      socket_.close(ec);
      return;
    }
    start_ = Clock::now();
    if (socket_.is_open()) {
      Write();
      return;
    }
    socket_ = tcp::socket(ioc_);
    socket_.async_connect(shared_.endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail("connect", ec);
      self->socket_.set_option(tcp::no_delay(true), ec);
      self->Write();
    });
  }

  std::vector<uint32_t> latencies_us;
  std::map<int, int64_t> statuses;
  int64_t errors = 0;

 private:
  void Write() {
    const std::string& req = (*shared_.requests)[index_];
    asio::async_write(socket_, asio::buffer(req), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail("write", ec);
      self->Read();
    });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(1 << 20);
    bhttp::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail("read", ec);
      self->Done();
    });
  }

  void Done() {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
    latencies_us.push_back(static_cast<uint32_t>(us));
    const auto& res = parser_->get();
    int status = static_cast<int>(res.result_int());
    ++statuses[status];
    if (status != 200) {
      shared_.Sample(absl::StrCat("#", index_, ": HTTP ", status, " ", res.body().substr(0, 200)));
    }
    if (!shared_.keep_alive || !res.keep_alive()) {
      beast::error_code ec;
      socket_.close(ec);
      buffer_.clear();
    }
    shared_.Finished();
    Next();
  }

  void Fail(const char* what, beast::error_code ec) {
    ++errors;
    shared_.Sample(absl::StrCat("#", index_, ": ", what, ": ", ec.message()));
    beast::error_code ignored;
    socket_.close(ignored);
    buffer_.clear();
    shared_.Finished();
    Next();
  }

  asio::io_context& ioc_;
  Shared& shared_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  int index_ = 0;
  Clock::time_point start_;
};

// CPU time (user + system, all threads) the given processes have used, in
// microseconds; 0 for pids that are gone.
int64_t ProcessCpuMicros(const std::vector<int>& pids) {
  static const long ticks = sysconf(_SC_CLK_TCK);
  int64_t total = 0;
  for (int pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');  // the command name may contain spaces
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 2));
    std::string f;
    int64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {  // field numbers as in proc(5)
      if (i == 14) utime = std::atoll(f.c_str());
      if (i == 15) stime = std::atoll(f.c_str());
    }
    total += (utime + stime) * 1000000 / ticks;
  }
  return total;
}

int64_t SelfCpuMicros() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

double Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseFlags(argc, argv);
  std::string run_id = absl::StrCat(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count() %
          100000000,
      "-", std::random_device{}() % 10000);

  auto t0 = Clock::now();
  std::vector<std::pair<std::string, std::string>> intents;
  if (o.setup) intents = CreateIntents(o, run_id);
  auto t1 = Clock::now();
  std::string etag = "\"D8E8FCA2DC0F896FD7CB4CB0031BA249\"";
  if (!o.sim_data.empty()) etag = StoreObjects(o, intents);
  std::vector<std::string> requests = BuildRequests(o, run_id, intents, etag);
  auto t2 = Clock::now();
  std::cerr << "callback_load[" << o.label << "]: " << (o.setup ? "created " : "skipped setup, ")
            << (o.setup ? absl::StrCat(o.count, " intents in ", Seconds(t1 - t0), " s, ") : "")
            << "signed " << o.count << " callbacks in " << Seconds(t2 - t1) << " s\n";

  Shared shared;
  shared.requests = &requests;
  shared.keep_alive = o.keep_alive;
  {
    std::string hp = o.http;
    size_t colon = hp.rfind(':');
    if (colon == std::string::npos) Usage("--http must be HOST:PORT");
    std::string host = hp.substr(0, colon);
    if (host == "localhost") host = "127.0.0.1";
    beast::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) Usage("--http host must be an IP literal or localhost");
    shared.endpoint = tcp::endpoint(addr, static_cast<unsigned short>(std::atoi(hp.substr(colon + 1).c_str())));
  }

  asio::io_context ioc(o.threads);
  std::vector<std::shared_ptr<Slot>> slots;
  for (int i = 0; i < std::min(o.concurrency, o.count); ++i) slots.push_back(std::make_shared<Slot>(ioc, shared));
  asio::steady_timer deadline(ioc, std::chrono::seconds(o.timeout_s));
  bool timed_out = false;
  deadline.async_wait([&](beast::error_code ec) {
    if (!ec) {
      timed_out = true;
      ioc.stop();
    }
  });
  // The deadline timer keeps run() busy; cancel it once every callback is done.
  shared.all_done = [&] { asio::post(ioc, [&] { deadline.cancel(); }); };
  std::vector<int> server_pids;
  for (absl::string_view p : absl::StrSplit(o.server_pids, ',', absl::SkipEmpty())) {
    server_pids.push_back(std::atoi(std::string(p).c_str()));
  }
  const int64_t server_cpu0 = ProcessCpuMicros(server_pids);
  const int64_t self_cpu0 = SelfCpuMicros();
  auto start = Clock::now();
  for (auto& s : slots) asio::post(ioc, [s] { s->Next(); });
  std::vector<std::thread> io_threads;
  for (int t = 1; t < o.threads; ++t) io_threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& th : io_threads) th.join();
  double elapsed = Seconds(Clock::now() - start);
  const double answered = static_cast<double>(std::max<int64_t>(1, o.count));
  const double server_cpu_us = static_cast<double>(ProcessCpuMicros(server_pids) - server_cpu0) / answered;
  const double client_cpu_us = static_cast<double>(SelfCpuMicros() - self_cpu0) / answered;

  std::vector<uint32_t> lat;
  std::map<int, int64_t> statuses;
  int64_t errors = 0;
  for (auto& s : slots) {
    lat.insert(lat.end(), s->latencies_us.begin(), s->latencies_us.end());
    for (auto& [k, v] : s->statuses) statuses[k] += v;
    errors += s->errors;
  }
  std::sort(lat.begin(), lat.end());
  int64_t ok = statuses[200];
  int64_t non200 = static_cast<int64_t>(lat.size()) - ok;
  int64_t missing = o.count - ok - non200 - errors;
  std::string status_list;
  for (auto& [k, v] : statuses) {
    if (v) absl::StrAppend(&status_list, status_list.empty() ? "" : ",", k, ":", v);
  }
  for (const auto& s : shared.samples) std::cerr << "callback_load[" << o.label << "]: " << s << "\n";
  if (timed_out) std::cerr << "callback_load[" << o.label << "]: timed out after " << o.timeout_s << " s\n";
  std::printf(
      "label=%s mode=%s conc=%d n=%d ok=%lld non200=%lld errors=%lld unsent=%lld elapsed_s=%.3f rps=%.0f "
      "p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f server_cpu_us=%.0f client_cpu_us=%.0f statuses=%s\n",
      o.label.c_str(), o.keep_alive ? "keepalive" : "newconn", o.concurrency, o.count,
      static_cast<long long>(ok), static_cast<long long>(non200), static_cast<long long>(errors),
      static_cast<long long>(missing), elapsed, static_cast<double>(ok + non200) / elapsed, Percentile(lat, 0.50),
      Percentile(lat, 0.99), Percentile(lat, 0.999), lat.empty() ? 0.0 : lat.back() / 1000.0,
      server_pids.empty() ? 0.0 : server_cpu_us, client_cpu_us, status_list.empty() ? "-" : status_list.c_str());
  return ok == o.count ? 0 : 1;
}
