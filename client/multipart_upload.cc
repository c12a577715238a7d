#include "client/multipart_upload.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/multipart_resume.h"
#include "client/resume_state.h"
#include "client/upload_common.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::client {
namespace {

using internal::OssAnswer;
using internal::ResumeState;

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
  // `on_sent(number, md5)` is called (one call at a time) once OSS has
  // accepted a part, with the uppercase hex MD5 of the bytes sent.
  PartSender(BrokerClient& broker, const UploadArgs& args, const std::string& upload_id,
             int fd, std::vector<int> missing, const v1::MultipartPlan& plan,
             std::function<void(int, const std::string&)> on_sent, std::ostream& err)
      : broker_(broker),
        args_(args),
        upload_id_(upload_id),
        fd_(fd),
        missing_(std::move(missing)),
        plan_(plan),
        on_sent_(std::move(on_sent)),
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
      std::string md5;
      std::string failure = SendPart(number, buffer, md5);
      absl::MutexLock lock(&mu_);
      if (!failure.empty()) {
        if (failure_.empty()) failure_ = std::move(failure);
        return;
      }
      on_sent_(number, md5);  // OSS holds it even if another worker failed
      if (!failure_.empty()) return;
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
  std::string SendPart(int number, std::string& buffer, std::string& md5) {
    std::string last;
    for (int attempt = 0; attempt <= args_.retries; ++attempt) {
      if (attempt > 0) absl::SleepFor(args_.part_retry_backoff.Delay(attempt - 1));
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
      if (part.size() != internal::PartBytes(plan_, number) ||
          part.offset() != plan_.part_size() * (number - 1) ||
          !internal::ReadPart(fd_, plan_, number, buffer)) {
        return absl::StrCat("cannot read part ", number, " of ", args_.file,
                            " (the file changed size?)");
      }
      md5 = internal::Md5Hex(buffer);
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
  const std::function<void(int, const std::string&)> on_sent_;
  std::ostream& err_;
  std::atomic<size_t> next_{0};
  absl::Mutex mu_;
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  std::string failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::string ResumeStatePath(const std::string& file, const std::string& state_file) {
  return internal::ResolveStatePath(file, state_file);
}

namespace {

// Closes the file on every path out.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Starts a new upload of `state` and records it at `state_path`; "" (after
// saying why on `err`) when the broker refuses or the state cannot be
// written (then the new upload is aborted: it could not be resumed).
std::string Start(BrokerClient& broker, const UploadArgs& args, const std::string& state_path,
                  ResumeState& state, v1::MultipartPlan& plan, std::ostream& err) {
  v1::CreateMultipartUploadRequest req;
  req.set_bucket(args.bucket);
  req.set_key(state.key);
  req.set_content_type(args.content_type);
  req.set_total_size(state.file.size);
  req.set_part_size(args.part_size);
  req.set_ttl_seconds(args.ttl_seconds);
  req.set_allow_overwrite(args.allow_overwrite);
  if (!internal::FillMetadata(args.metadata, req.mutable_metadata(), err)) return "";
  auto created = broker.CreateMultipartUpload(req);
  if (!created.ok()) {
    err << "error: the broker refused to start a multipart upload: "
        << created.status().message() << "\n";
    return "";
  }
  state.upload_id = created->upload_id();
  state.sent_md5.clear();
  plan = created->plan();
  if (!internal::WriteResumeState(state_path, state)) {
    err << "error: cannot write the resume state to " << state_path
        << "; not uploading what could not be resumed (pass --state-file PATH)\n";
    internal::AbortAbandoned(broker, state.upload_id, err);
    return "";
  }
  return state.upload_id;
}

}  // namespace

int UploadMultipart(BrokerClient& broker, const UploadArgs& args, int64_t size,
                    const std::string& key, std::ostream& out, std::ostream& err) {
  Fd file{open(args.file.c_str(), O_RDONLY | O_CLOEXEC)};
  std::optional<internal::FileIdentity> identity =
      file.fd < 0 ? std::nullopt : internal::IdentityOf(file.fd);
  if (!identity || identity->size != size) {
    err << "error: cannot read " << args.file << "\n";
    return 2;
  }
  const std::string state_path = internal::ResolveStatePath(args.file, args.state_file);
  if (state_path.empty()) {
    err << "error: nowhere to keep the resume state: "
        << (args.state_file.empty()
                ? absl::StrCat(internal::DefaultStatePath(args.file),
                               " cannot be written and neither can $XDG_STATE_HOME/ubctl/")
                : absl::StrCat(args.state_file, " cannot be written"))
        << "; pass --state-file PATH\n";
    return 2;
  }
  if (state_path != internal::DefaultStatePath(args.file)) {
    err << "note: the resume state is kept in " << state_path << "\n";
  }
  ResumeState state;
  state.bucket = args.bucket;
  state.key = key;
  state.file = *identity;
  v1::MultipartPlan plan;
  std::map<int, std::string> md5s;  // part -> MD5 OSS holds, proven the file's
  if (std::optional<ResumeState> saved = internal::LoadResumeState(state_path)) {
    std::string why = internal::WhyNotResumable(*saved, state, args.file);
    if (why.empty()) {
      auto listed = broker.ListUploadedParts(saved->upload_id);
      if (listed.ok()) {
        internal::HeldParts held = internal::CheckHeldParts(file.fd, *listed, saved->sent_md5);
        if (held.read_error) {
          err << "error: cannot read " << args.file << " (it changed size?)\n";
          return 2;
        }
        state.upload_id = saved->upload_id;
        plan = listed->plan();
        md5s = held.same;
        err << "resuming upload " << state.upload_id << ": OSS holds " << listed->parts_size()
            << " of " << plan.part_count() << " parts; " << held.same.size()
            << " match the file";
        if (held.differ > 0) err << ", " << held.differ << " differ and will be sent again";
        err << "\n";
        state.sent_md5 = md5s;  // compact the journal to what is proven
        if (!internal::WriteResumeState(state_path, state)) {
          err << "error: cannot rewrite the resume state " << state_path << "\n";
          return 1;
        }
      } else if (absl::IsNotFound(listed.status()) ||
                 absl::IsFailedPrecondition(listed.status())) {
        err << "note: cannot resume upload " << saved->upload_id << " ("
            << listed.status().message()
            << "; --ttl bounds the whole upload, resumes included); starting over\n";
      } else {
        err << "error: cannot ask the broker about upload " << saved->upload_id << ": "
            << listed.status().message() << "; nothing was sent, run it again later\n";
        return 1;
      }
    } else {
      err << "note: not resuming upload " << saved->upload_id << ": " << why
          << "; starting over\n";
      internal::AbortAbandoned(broker, saved->upload_id, err);
    }
  }
  if (state.upload_id.empty() && Start(broker, args, state_path, state, plan, err).empty()) {
    return 1;
  }
  std::vector<int> missing;
  for (int n = 1; n <= plan.part_count(); ++n) {
    if (md5s.count(n) == 0) missing.push_back(n);
  }
  bool journal_ok = true;
  auto on_sent = [&](int n, const std::string& md5) {
    md5s[n] = md5;
    if (journal_ok && !internal::AppendSentPart(state_path, n, md5)) {
      journal_ok = false;
      err << "warning: cannot append to " << state_path
          << "; if interrupted, the parts sent from now on are checked against OSS again\n";
    }
  };
  std::string failure =
      PartSender(broker, args, state.upload_id, file.fd, missing, plan, on_sent, err).Run();
  if (!failure.empty()) {
    err << "error: " << failure << "\n";
    return 1;
  }
  // Complete only what is provably this file: unchanged since it was read,
  // and every part in OSS carrying the MD5 read from it.
  std::optional<internal::FileIdentity> after = internal::IdentityOf(file.fd);
  if (!after || *after != *identity) {
    err << "error: " << args.file << " changed while it was being uploaded; not completing "
        << "(run the same command again: it starts over)\n";
    return 1;
  }
  auto listed = broker.ListUploadedParts(state.upload_id);
  if (!listed.ok()) {
    err << "error: cannot check the parts before completing: " << listed.status().message()
        << "; run the same command again\n";
    return 1;
  }
  if (std::string wrong = internal::CheckAllHeld(*listed, md5s); !wrong.empty()) {
    err << "error: not completing: " << wrong << "; run the same command again\n";
    return 1;
  }
  auto complete = broker.CompleteMultipartUpload(state.upload_id);
  if (!complete.ok()) {
    err << "error: the broker refused to presign the completion: "
        << complete.status().message() << "\n";
    return 1;
  }
  UploadArgs quiet = args;
  quiet.progress = false;
  OssAnswer done = Send(complete->method(), complete->url(), complete->headers(), "", 0, quiet, err);
  // Stored (even 203, callback failed): OSS's upload is over, nothing is left
  // to resume, and a later run must not abort the intent the reconciler
  // will settle.
  if (done.code == CURLE_OK && done.status >= 200 && done.status <= 299) {
    std::remove(state_path.c_str());
  }
  return internal::Report(done, out, err);
}

}  // namespace uploadbroker::client
