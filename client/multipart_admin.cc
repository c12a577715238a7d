#include "client/multipart_admin.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/multipart_upload.h"
#include "client/resume_state.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::client {
namespace {

std::string Time(const google::protobuf::Timestamp& t) {
  return absl::FormatTime(absl::RFC3339_sec, absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string Code(const absl::Status& st) { return absl::StatusCodeToString(st.code()); }

// One upload and what OSS holds of it; `with_parts` lists every part.
nlohmann::json Describe(BrokerClient& broker, const v1::Upload& u, bool with_parts) {
  nlohmann::json j{{"upload_id", u.upload_id()},
                   {"caller", u.caller()},
                   {"bucket", u.bucket()},
                   {"key", u.key()},
                   {"created_at", Time(u.created_at())},
                   {"expires_at", Time(u.expires_at())},
                   {"total_size", u.multipart().total_size()},
                   {"part_size", u.multipart().part_size()},
                   {"part_count", u.multipart().part_count()}};
  auto parts = broker.ListUploadedParts(u.upload_id());
  if (!parts.ok()) {
    j["parts_error"] = absl::StrCat(Code(parts.status()), ": ", parts.status().message());
    return j;
  }
  int64_t bytes = 0;
  nlohmann::json list = nlohmann::json::array();
  for (const v1::UploadedPart& p : parts->parts()) {
    bytes += p.size();
    if (with_parts) {
      list.push_back({{"part_number", p.part_number()}, {"size", p.size()}, {"etag", p.etag()}});
    }
  }
  j["parts_held"] = parts->parts_size();
  j["bytes_held"] = bytes;
  if (with_parts) j["parts"] = std::move(list);
  return j;
}

// The state file for `what` (itself a state file, or a FILE with one).
std::string StatePathFor(const std::string& what, const std::string& state_file) {
  if (state_file.empty() && internal::LoadResumeState(what)) return what;
  if (!state_file.empty()) return state_file;
  std::string next_to = internal::DefaultStatePath(what);
  if (access(next_to.c_str(), F_OK) == 0) return next_to;
  return ResumeStatePath(what);
}

int NoState(const std::string& what, const std::string& path, std::ostream& err) {
  err << "error: no interrupted upload is recorded for " << what << " (looked in "
      << (path.empty() ? internal::DefaultStatePath(what) : path) << ")\n";
  return 1;
}

}  // namespace

int ListMultipart(BrokerClient& broker, const std::string& bucket, const std::string& key_prefix,
                  const std::string& file, const std::string& state_file, std::ostream& out,
                  std::ostream& err) {
  if (!file.empty()) {
    const std::string path = StatePathFor(file, state_file);
    std::optional<internal::ResumeState> saved =
        path.empty() ? std::nullopt : internal::LoadResumeState(path);
    if (!saved) return NoState(file, path, err);
    auto upload = broker.GetUpload(saved->upload_id);
    if (!upload.ok()) {
      err << "error: " << Code(upload.status()) << ": " << upload.status().message() << "\n";
      return 1;
    }
    nlohmann::json j = Describe(broker, *upload, true);
    j["state_file"] = path;
    j["state"] = v1::UploadState_Name(upload->state());
    int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
    std::optional<internal::FileIdentity> now = fd < 0 ? std::nullopt : internal::IdentityOf(fd);
    if (fd >= 0) close(fd);
    j["file_changed"] = !now || *now != saved->file;
    out << j.dump(2) << "\n";
    return 0;
  }
  v1::ListUploadsRequest req;
  if (!bucket.empty()) req.add_buckets(bucket);
  req.set_key_prefix(key_prefix);
  req.set_state(v1::UPLOAD_STATE_PENDING);
  req.set_page_size(1000);
  nlohmann::json uploads = nlohmann::json::array();
  do {
    auto page = broker.ListUploads(req);
    if (!page.ok()) {
      err << "error: " << Code(page.status()) << ": " << page.status().message() << "\n";
      return 1;
    }
    for (const v1::Upload& u : page->uploads()) {
      if (u.method() == v1::UPLOAD_METHOD_MULTIPART) uploads.push_back(Describe(broker, u, false));
    }
    req.set_page_token(page->next_page_token());
  } while (!req.page_token().empty());
  out << nlohmann::json{{"uploads", uploads}}.dump(2) << "\n";
  return 0;
}

int AbortMultipart(BrokerClient& broker, const std::string& what, const std::string& state_file,
                   std::ostream& out, std::ostream& err) {
  if (what.empty()) {
    err << "error: usage: ubctl multipart abort UPLOAD_ID|FILE\n";
    return 2;
  }
  struct stat st;
  if (stat(what.c_str(), &st) != 0 && state_file.empty()) {  // not a file: an upload id
    auto aborted = broker.AbortUpload(what);
    if (!aborted.ok()) {
      err << "error: " << Code(aborted.status()) << ": " << aborted.status().message() << "\n";
      return 1;
    }
    out << nlohmann::json{{"upload_id", what}, {"aborted", true}}.dump(2) << "\n";
    return 0;
  }
  const std::string path = StatePathFor(what, state_file);
  std::optional<internal::ResumeState> saved =
      path.empty() ? std::nullopt : internal::LoadResumeState(path);
  if (!saved) return NoState(what, path, err);
  auto aborted = broker.AbortUpload(saved->upload_id);
  const bool ended =
      absl::IsNotFound(aborted.status()) || absl::IsFailedPrecondition(aborted.status());
  if (!aborted.ok() && !ended) {
    err << "error: " << Code(aborted.status()) << ": " << aborted.status().message()
        << " (the state file " << path << " is kept)\n";
    return 1;
  }
  if (ended) {
    err << "note: upload " << saved->upload_id << " had already ended ("
        << aborted.status().message() << ")\n";
  }
  std::remove(path.c_str());
  out << nlohmann::json{{"upload_id", saved->upload_id},
                        {"aborted", aborted.ok()},
                        {"state_file_removed", path}}
             .dump(2)
      << "\n";
  return 0;
}

}  // namespace uploadbroker::client
