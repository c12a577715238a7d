#include "client/multipart_resume.h"

#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace uploadbroker::client::internal {

int64_t PartBytes(const v1::MultipartPlan& plan, int n) {
  return n < plan.part_count() ? plan.part_size()
                               : plan.total_size() - plan.part_size() * (plan.part_count() - 1);
}

bool ReadPart(int fd, const v1::MultipartPlan& plan, int n, std::string& buffer) {
  const int64_t want = PartBytes(plan, n);
  if (n < 1 || n > plan.part_count() || want < 0) return false;
  buffer.resize(static_cast<size_t>(want));
  off_t offset = static_cast<off_t>(plan.part_size() * (n - 1));
  size_t done = 0;
  while (done < buffer.size()) {  // pread may return less than asked
    ssize_t got = pread(fd, buffer.data() + done, buffer.size() - done,
                        offset + static_cast<off_t>(done));
    if (got <= 0) return false;
    done += static_cast<size_t>(got);
  }
  return true;
}

HeldParts CheckHeldParts(int fd, const v1::ListUploadedPartsResponse& listed,
                         const std::map<int, std::string>& sent_md5) {
  HeldParts r;
  const v1::MultipartPlan& plan = listed.plan();
  std::string buffer;
  for (const v1::UploadedPart& p : listed.parts()) {
    const int n = p.part_number();
    if (n < 1 || n > plan.part_count() || p.size() != PartBytes(plan, n)) {
      ++r.differ;
      continue;
    }
    if (!ReadPart(fd, plan, n, buffer)) {
      r.read_error = true;
      return r;
    }
    const std::string local = Md5Hex(buffer);
    const std::string held = Md5OfEtag(p.etag());
    auto sent = sent_md5.find(n);
    const bool same =
        !held.empty() ? held == local : sent != sent_md5.end() && sent->second == local;
    if (same) {
      r.same[n] = local;
    } else {
      ++r.differ;
    }
  }
  return r;
}

std::string CheckAllHeld(const v1::ListUploadedPartsResponse& listed,
                         const std::map<int, std::string>& md5s) {
  const v1::MultipartPlan& plan = listed.plan();
  std::map<int, const v1::UploadedPart*> held;
  for (const v1::UploadedPart& p : listed.parts()) held[p.part_number()] = &p;
  for (int n = 1; n <= plan.part_count(); ++n) {
    auto it = held.find(n);
    if (it == held.end()) return absl::StrCat("OSS does not hold part ", n);
    if (it->second->size() != PartBytes(plan, n)) {
      return absl::StrCat("OSS holds part ", n, " with ", it->second->size(), " bytes, not ",
                          PartBytes(plan, n));
    }
    const std::string etag = Md5OfEtag(it->second->etag());
    auto want = md5s.find(n);
    if (!etag.empty() && (want == md5s.end() || want->second != etag)) {
      return absl::StrCat("OSS holds part ", n, " with MD5 ", etag, ", not the file's ",
                          want == md5s.end() ? "(unknown)" : want->second);
    }
  }
  if (held.size() != static_cast<size_t>(plan.part_count())) {
    return absl::StrCat("OSS holds ", held.size(), " parts, the plan has ", plan.part_count());
  }
  return "";
}

std::string WhyNotResumable(const ResumeState& saved, const ResumeState& now,
                            const std::string& file) {
  if (saved.bucket != now.bucket || saved.key != now.key) {
    return absl::StrCat("it was going to ", saved.bucket, "/", saved.key, ", not ", now.bucket,
                        "/", now.key);
  }
  if (saved.file.size != now.file.size) {
    return absl::StrCat(file, " is now ", now.file.size, " bytes, it was ", saved.file.size);
  }
  if (saved.file.mtime_ns < 0) {
    return "its state file does not record the file's modification time (written by an older "
           "ubctl), so the parts in OSS cannot be proven to be this file's";
  }
  if (saved.file.mtime_ns != now.file.mtime_ns) {
    return absl::StrCat(file, " was modified since the upload started");
  }
  return "";
}

void AbortAbandoned(BrokerClient& broker, const std::string& upload_id, std::ostream& err) {
  // Only an upload still open in OSS holds parts; one OSS completed (say,
  // answered 203 to an older ubctl) is left for the reconciler to record.
  auto open = broker.ListUploadedParts(upload_id);
  if (!open.ok() && (absl::IsNotFound(open.status()) ||
                     absl::IsFailedPrecondition(open.status()))) {
    return;
  }
  auto aborted = broker.AbortUpload(upload_id);
  if (aborted.ok()) {
    err << "note: aborted upload " << upload_id << "; OSS no longer stores its parts\n";
  } else if (!absl::IsNotFound(aborted.status()) &&
             !absl::IsFailedPrecondition(aborted.status())) {
    err << "warning: could not abort upload " << upload_id << " (" << aborted.status().message()
        << "); its parts stay stored until it expires unless you run `ubctl multipart abort "
        << upload_id << "`\n";
  }  // else it had already ended: nothing is stored
}

}  // namespace uploadbroker::client::internal
