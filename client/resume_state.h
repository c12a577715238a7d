// The resume state of one `ubctl upload --multipart`: which upload the file
// is going to, the file's identity when it started (size and modification
// time), and the MD5 of every part as it was sent. Internal to client/.
//
// On disk it is a journal: a JSON header line, then one JSON line per part
// sent ({"part":N,"md5":"HEX"}), appended as OSS accepts each part, so a
// kill at any moment leaves every completed line readable (a torn last line
// is ignored). Not thread-safe: one writer (the caller serializes appends).
#ifndef UPLOADBROKER_CLIENT_RESUME_STATE_H_
#define UPLOADBROKER_CLIENT_RESUME_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace uploadbroker::client::internal {

// What makes a local file "the same file" between two runs.
struct FileIdentity {
  int64_t size = -1;
  int64_t mtime_ns = -1;  // st_mtim, nanoseconds since the epoch
  bool operator==(const FileIdentity& o) const {
    return size == o.size && mtime_ns == o.mtime_ns;
  }
  bool operator!=(const FileIdentity& o) const { return !(*this == o); }
};

// The identity of the open file `fd`; nullopt if fstat fails.
std::optional<FileIdentity> IdentityOf(int fd);

struct ResumeState {
  std::string upload_id;
  std::string bucket;
  std::string key;
  FileIdentity file;  // mtime_ns -1: written by an ubctl that did not record it
  std::map<int, std::string> sent_md5;  // part number -> uppercase hex MD5 sent
};

// The state at `path`; nullopt when there is none, the header is not ours,
// or `path` is not a regular file of at most 4 MiB.
std::optional<ResumeState> LoadResumeState(const std::string& path);

// Replaces `path` with `state` (header and parts), atomically (write to a
// temporary file, then rename). False if it cannot be written.
bool WriteResumeState(const std::string& path, const ResumeState& state);

// Appends one sent part to the journal at `path`. False if it cannot.
bool AppendSentPart(const std::string& path, int part_number, const std::string& md5_hex);

// Uppercase hex MD5 of `data` (common/crypto.h underneath).
std::string Md5Hex(absl::string_view data);

// The MD5 an OSS part ETag carries (quotes stripped, uppercased), or "" when
// the ETag is not a plain MD5 (32 hex digits), e.g. under some server-side
// encryption modes.
std::string Md5OfEtag(absl::string_view etag);

// Where the resume state for `file` is kept, in this order: `explicit_path`
// when not empty; FILE.ubupload when it exists or FILE's directory is
// writable; else $XDG_STATE_HOME/ubctl/ (default ~/.local/state/ubctl/),
// created if needed, under a name derived from FILE's absolute path. "" when
// none of these is writable. Never returns a path it has not checked.
std::string ResolveStatePath(const std::string& file, const std::string& explicit_path);

// FILE.ubupload: the default place, next to the file.
std::string DefaultStatePath(const std::string& file);

}  // namespace uploadbroker::client::internal

#endif  // UPLOADBROKER_CLIENT_RESUME_STATE_H_
