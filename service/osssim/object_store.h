// ObjectStore: objects on disk under <dir>/<bucket>/<hex(key)>.{data,json}.
// Hex file names keep any key (slashes, Unicode, "..") inside the directory.
// Writes go to a temp file and are renamed into place, so a reader sees the
// old or the new object, never half of one. Thread-safe: writes to one store
// are serialised, so with `forbid_overwrite` exactly one of several writers
// of a new key succeeds; otherwise the last writer wins.
#ifndef UPLOADBROKER_OSSSIM_OBJECT_STORE_H_
#define UPLOADBROKER_OSSSIM_OBJECT_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace uploadbroker::osssim {

struct ObjectInfo {
  std::string etag;          // quoted uppercase hex MD5, e.g. "\"5EB6…\""
  int64_t size = 0;
  std::string content_type;
  std::string content_md5;   // base64 MD5
  std::string crc64;         // decimal CRC-64/ECMA-182 (x-oss-hash-crc64ecma)
  std::map<std::string, std::string> metadata;  // x-oss-meta-* (lowercased)
  absl::Time last_modified;  // when it was written (Last-Modified, whole seconds)
  // x-oss-object-acl it was written with: private, public-read,
  // public-read-write or default (the bucket's). Answered by GetObjectACL.
  std::string acl = "default";
};

class ObjectStore {
 public:
  explicit ObjectStore(std::string dir) : dir_(std::move(dir)) {}

  // Stores `data`; computes etag, size, MD5 and CRC64 into the result.
  // With `forbid_overwrite`, AlreadyExists if the key holds an object (as
  // OSS's x-oss-forbid-overwrite: true); nothing is written then.
  absl::StatusOr<ObjectInfo> Put(absl::string_view bucket, absl::string_view key,
                                 absl::string_view data, std::string content_type,
                                 std::map<std::string, std::string> metadata,
                                 bool forbid_overwrite = false, std::string acl = "default");
  // Stores the concatenation of the files `parts` (read in order, streamed,
  // never held whole in memory) under the given ETag; the object has no
  // Content-MD5, as a multipart object in OSS has none. `forbid_overwrite`
  // as for Put.
  absl::StatusOr<ObjectInfo> PutConcatenation(absl::string_view bucket, absl::string_view key,
                                              const std::vector<std::string>& parts,
                                              std::string etag, std::string content_type,
                                              std::map<std::string, std::string> metadata,
                                              bool forbid_overwrite = false,
                                              std::string acl = "default");
  // nullopt if absent (or unreadable).
  std::optional<ObjectInfo> Head(absl::string_view bucket, absl::string_view key) const;
  std::optional<std::string> Read(absl::string_view bucket, absl::string_view key) const;

  // ListObjectsV2's view: objects whose key starts with `prefix` and sorts
  // after `start_after`, in key order (byte-wise), at most `max_keys` of
  // them; `truncated` says whether more follow.
  struct Listing {
    std::vector<std::pair<std::string, ObjectInfo>> objects;
    bool truncated = false;
  };
  Listing List(absl::string_view bucket, absl::string_view prefix, absl::string_view start_after,
               size_t max_keys) const;

 private:
  absl::Status WriteMeta(absl::string_view bucket, absl::string_view key,
                         const ObjectInfo& info) const;
  std::string Path(absl::string_view bucket, absl::string_view key, absl::string_view ext) const;
  std::string dir_;
  absl::Mutex write_mu_;  // held across a whole Put or PutConcatenation
};

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_OBJECT_STORE_H_
