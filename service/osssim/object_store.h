// ObjectStore: objects on disk under <dir>/<bucket>/. An object is two
// files: its metadata <hex(key)>.json (size, ETag, Content-MD5, CRC-64,
// type, x-oss-meta-*, ACL, Last-Modified, and the name of its data file) and
// its bytes <hex(key)>.<version>.data. Hex file names keep any key (slashes,
// Unicode, "..") inside the directory. HeadObject, ListObjectsV2 and
// GetObjectACL read only the metadata, so they cost the same whatever the
// object's size.
//
// Writes: the bytes arrive in a StagedFile (streamed, hashed as they come)
// under <dir>/.staging/, are renamed to a new data file, then the metadata
// is written to a temp file and renamed over the old one: that rename is the
// commit. A reader therefore sees the old object or the new one, never a
// mix; a simulator killed mid-write leaves at most an unreferenced data file
// or a staging file, never a visible partial object (RemoveLeftovers clears
// both at startup). The replaced data file is deleted after the commit (a
// GET that opened it keeps reading it). Data written by an older simulator
// (<hex>.data, no data file name in the metadata) is still read.
//
// Thread-safe: writes to one store are serialised, so with
// `forbid_overwrite` exactly one of several writers of a new key succeeds;
// otherwise the last writer wins. Reads take no lock.
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
#include "osssim/staged_file.h"

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

// What a new object carries besides its bytes.
struct ObjectAttributes {
  std::string content_type = "application/octet-stream";
  std::map<std::string, std::string> metadata;  // x-oss-meta-*, lowercased
  std::string acl = "default";
  // As OSS's x-oss-forbid-overwrite: true: AlreadyExists if the key holds
  // an object; nothing is written then.
  bool forbid_overwrite = false;
  // Empty: the ETag is the quoted uppercase MD5 of the bytes and the object
  // has a Content-MD5. Set (a multipart ETag): used as is, no Content-MD5,
  // as a multipart object in OSS has none.
  std::string etag;
};

class ObjectStore {
 public:
  explicit ObjectStore(std::string dir) : dir_(std::move(dir)) {}

  // Where StagedFiles for this store go (same file system as the objects).
  std::string staging_dir() const { return dir_ + "/.staging"; }
  // Deletes staging files and data files no metadata refers to: what a
  // killed simulator left. Call at startup, before serving.
  void RemoveLeftovers();

  // Stores the finished `staged` (its size, MD5 and CRC-64 as computed while
  // it was written) under bucket/key; on success the file is the object's.
  // On any error (AlreadyExists, Internal) nothing is stored and `staged`
  // keeps its file (its destructor deletes it).
  absl::StatusOr<ObjectInfo> Put(absl::string_view bucket, absl::string_view key,
                                 StagedFile& staged, ObjectAttributes attributes);
  // The same for bytes in memory (small objects, tests).
  absl::StatusOr<ObjectInfo> Put(absl::string_view bucket, absl::string_view key,
                                 absl::string_view data, std::string content_type,
                                 std::map<std::string, std::string> metadata,
                                 bool forbid_overwrite = false, std::string acl = "default");
  // The concatenation of the files `parts`, copied in order a piece at a
  // time (never whole in memory), stored with `attributes.etag`.
  absl::StatusOr<ObjectInfo> PutConcatenation(absl::string_view bucket, absl::string_view key,
                                              const std::vector<std::string>& parts,
                                              ObjectAttributes attributes);

  // From the metadata alone; nullopt if absent (or unreadable).
  std::optional<ObjectInfo> Head(absl::string_view bucket, absl::string_view key) const;
  // The metadata and a read-only descriptor of the matching bytes (the
  // caller closes it), for GetObject; nullopt if absent.
  struct Opened {
    ObjectInfo info;
    int fd = -1;
  };
  std::optional<Opened> Open(absl::string_view bucket, absl::string_view key) const;
  // The whole object in memory (tests; small objects only).
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
  // Metadata plus the data file's name (relative to the bucket directory).
  std::optional<std::pair<ObjectInfo, std::string>> ReadMeta(absl::string_view bucket,
                                                             absl::string_view key) const;
  absl::Status WriteMeta(absl::string_view bucket, absl::string_view key, const ObjectInfo& info,
                         const std::string& data_name) const;
  std::string BucketDir(absl::string_view bucket) const;
  std::string dir_;
  absl::Mutex write_mu_;  // held across the commit of a Put
};

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_OBJECT_STORE_H_
