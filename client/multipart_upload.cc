#include "client/multipart_upload.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/upload_common.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::client {
namespace {

using internal::OssAnswer;

// The saved upload, if FILE.ubupload names one for the same object.
std::string SavedUploadId(const std::string& path, const UploadArgs& args,
                          const std::string& key, int64_t size) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream s;
  s << in.rdbuf();
  nlohmann::json state = nlohmann::json::parse(s.str(), nullptr, false);
  if (!state.is_object() || state.value("bucket", "") != args.bucket ||
      state.value("key", "") != key || state.value("size", int64_t{-1}) != size) {
    return "";
  }
  return state.value("upload_id", "");
}

bool SaveUploadId(const std::string& path, const UploadArgs& args, const std::string& key,
                  int64_t size, const std::string& upload_id) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json{{"upload_id", upload_id}, {"bucket", args.bucket}, {"key", key},
                          {"size", size}}
               .dump()
        << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Sends `body` with exactly the signed headers (curl adds no Content-Type).
OssAnswer Send(const std::string& method, const std::string& url,
               const google::protobuf::RepeatedPtrField<v1::HttpHeader>& signed_headers,
               const char* body, size_t size, const UploadArgs& args, std::ostream& err) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  bool has_type = false;
  for (const v1::HttpHeader& h : signed_headers) {
    list = curl_slist_append(list, absl::StrCat(h.name(), ": ", h.value()).c_str());
    has_type = has_type || absl::EqualsIgnoreCase(h.name(), "Content-Type");
  }
  if (!has_type) list = curl_slist_append(list, "Content-Type:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, &curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
  return internal::Perform(curl.get(), headers.get(), args, err);
}

// The parts still to send, their signed requests, and what the workers did.
class PartSender {
 public:
  PartSender(BrokerClient& broker, const UploadArgs& args, const std::string& upload_id,
             int fd, std::vector<int> missing, const v1::MultipartPlan& plan, std::ostream& err)
      : broker_(broker),
        args_(args),
        upload_id_(upload_id),
        fd_(fd),
        missing_(std::move(missing)),
        plan_(plan),
        err_(err) {}

  // Sends every missing part on `parallel` workers. Returns "" when all
  // arrived, else why not.
  std::string Run() {
    std::vector<std::thread> workers;
    int n = std::max(1, std::min<int>(args_.parallel, static_cast<int>(missing_.size())));
    for (int i = 0; i < n; ++i) workers.emplace_back([this] { Work(); });
    for (std::thread& t : workers) t.join();
    absl::MutexLock lock(&mu_);
    if (args_.progress) err_ << "\n";
    return failure_;
  }

 private:
  void Work() {
    std::string buffer;
    while (true) {
      size_t index = next_.fetch_add(1);
      if (index >= missing_.size() || Stopped()) return;
      const int number = missing_[index];
      std::string failure = SendPart(number, buffer);
      absl::MutexLock lock(&mu_);
      if (!failure_.empty()) return;
      if (!failure.empty()) {
        failure_ = std::move(failure);
        return;
      }
      ++done_;
      if (args_.progress) {
        const int pct = static_cast<int>(done_ * 100 / missing_.size());
        err_ << "\r[" << std::string(pct / 5, '#') << std::string(20 - pct / 5, ' ') << "] "
             << pct << "% (" << done_ << "/" << missing_.size() << " parts)" << std::flush;
      }
      if (args_.on_part_done && !args_.on_part_done(number)) {
        failure_ = absl::StrCat("stopped after ", done_, " of ", missing_.size(),
                                " parts; run the same command again to resume");
        return;
      }
    }
  }

  bool Stopped() {
    absl::MutexLock lock(&mu_);
    return !failure_.empty();
  }

  // One part, with retries; "" on success.
  std::string SendPart(int number, std::string& buffer) {
    std::string last;
    for (int attempt = 0; attempt <= args_.retries; ++attempt) {
      if (attempt > 0) absl::SleepFor(absl::Milliseconds(200) * (1 << std::min(attempt, 5)));
      v1::SignUploadPartsRequest req;
      req.set_upload_id(upload_id_);
      req.add_part_numbers(number);
      auto signed_parts = broker_.SignUploadParts(req);
      if (!signed_parts.ok()) {
        last = absl::StrCat("the broker refused to sign part ", number, ": ",
                            signed_parts.status().message());
        if (absl::IsFailedPrecondition(signed_parts.status()) ||
            absl::IsNotFound(signed_parts.status())) {
          return last;  // the intent is over; retrying cannot help
        }
        continue;
      }
      const v1::SignedPart& part = signed_parts->parts(0);
      buffer.resize(static_cast<size_t>(part.size()));
      ssize_t got = pread(fd_, buffer.data(), buffer.size(), static_cast<off_t>(part.offset()));
      if (got != static_cast<ssize_t>(buffer.size())) {
        return absl::StrCat("cannot read part ", number, " of ", args_.file,
                            " (the file changed size?)");
      }
      UploadArgs quiet = args_;
      quiet.progress = false;
      std::ostringstream ignored;
      OssAnswer a = Send("PUT", part.url(), part.headers(), buffer.data(), buffer.size(), quiet,
                         ignored);
      if (a.code == CURLE_OK && a.status == 200) return "";
      last = a.code != CURLE_OK ? absl::StrCat("part ", number, ": could not reach OSS: ",
                                               a.curl_error)
                                : absl::StrCat("part ", number, ": ", internal::Explain(a));
      if (a.code == CURLE_OK && a.status >= 400 && a.status < 500 && a.status != 403 &&
          a.status != 408 && a.status != 429) {
        return last;  // OSS refuses this part as such
      }
    }
    return absl::StrCat(last, " (after ", args_.retries + 1, " attempts)");
  }

  BrokerClient& broker_;
  const UploadArgs& args_;
  const std::string upload_id_;
  const int fd_;
  const std::vector<int> missing_;
  const v1::MultipartPlan plan_;
  std::ostream& err_;
  std::atomic<size_t> next_{0};
  absl::Mutex mu_;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  std::string failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::string ResumeStatePath(const std::string& file) { return file + ".ubupload"; }

int UploadMultipart(BrokerClient& broker, const UploadArgs& args, int64_t size,
                    const std::string& key, std::ostream& out, std::ostream& err) {
  const std::string state_path = ResumeStatePath(args.file);
  std::string upload_id = SavedUploadId(state_path, args, key, size);
  v1::MultipartPlan plan;
  std::map<int, int64_t> held;  // part number -> size OSS holds
  if (!upload_id.empty()) {
    auto listed = broker.ListUploadedParts(upload_id);
    if (listed.ok()) {
      plan = listed->plan();
      for (const v1::UploadedPart& p : listed->parts()) held[p.part_number()] = p.size();
      err << "resuming upload " << upload_id << ": OSS holds " << held.size() << " of "
          << plan.part_count() << " parts\n";
    } else {
      err << "note: cannot resume upload " << upload_id << " (" << listed.status().message()
          << "); starting again\n";
      upload_id.clear();
    }
  }
  if (upload_id.empty()) {
    v1::CreateMultipartUploadRequest req;
    req.set_bucket(args.bucket);
    req.set_key(key);
    req.set_content_type(args.content_type);
    req.set_total_size(size);
    req.set_part_size(args.part_size);
    req.set_ttl_seconds(args.ttl_seconds);
    req.set_allow_overwrite(args.allow_overwrite);
    if (!internal::FillMetadata(args.metadata, req.mutable_metadata(), err)) return 2;
    auto created = broker.CreateMultipartUpload(req);
    if (!created.ok()) {
      err << "error: the broker refused to start a multipart upload: "
          << created.status().message() << "\n";
      return 1;
    }
    upload_id = created->upload_id();
    plan = created->plan();
    if (!SaveUploadId(state_path, args, key, size, upload_id)) {
      err << "warning: cannot write " << state_path << "; an interrupted upload cannot resume\n";
    }
  }
  std::vector<int> missing;
  for (int n = 1; n <= plan.part_count(); ++n) {
    const int64_t want = n < plan.part_count()
                             ? plan.part_size()
                             : plan.total_size() - plan.part_size() * (plan.part_count() - 1);
    auto it = held.find(n);
    if (it == held.end() || it->second != want) missing.push_back(n);
  }
  int fd = open(args.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err << "error: cannot read " << args.file << "\n";
    return 2;
  }
  std::string failure = PartSender(broker, args, upload_id, fd, missing, plan, err).Run();
  close(fd);
  if (!failure.empty()) {
    err << "error: " << failure << "\n";
    return 1;
  }
  auto complete = broker.CompleteMultipartUpload(upload_id);
  if (!complete.ok()) {
    err << "error: the broker refused to presign the completion: "
        << complete.status().message() << "\n";
    return 1;
  }
  UploadArgs quiet = args;
  quiet.progress = false;
  int rc = internal::Report(
      Send(complete->method(), complete->url(), complete->headers(), "", 0, quiet, err), out, err);
  if (rc == 0) std::remove(state_path.c_str());
  return rc;
}

}  // namespace uploadbroker::client
