// UploadStore: the simulator's multipart uploads (oss-protocol.md §4.8):
// Initiate, UploadPart, ListParts, Complete and Abort, with OSS's limits
// (part numbers 1..10,000; at most 5 GB a part; every part but the last at
// least 100 KB, checked at Complete) and OSS's error codes. Parts are files
// under <dir>/.uploads/<upload id>/; the upload table lives in memory, so a
// restarted simulator has no multipart uploads in progress.
//
// Thread-safe: one mutex guards the table; a part's bytes arrive in a
// StagedFile (streamed and hashed outside the lock) renamed into place under
// it. Complete copies the parts into the object a piece at a time.
#ifndef UPLOADBROKER_OSSSIM_UPLOAD_STORE_H_
#define UPLOADBROKER_OSSSIM_UPLOAD_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "osssim/object_store.h"
#include "osssim/oss_error.h"

namespace uploadbroker::osssim {

inline constexpr int kMaxPartNumber = 10000;
inline constexpr int64_t kMinPartBytes = 100 * 1024;
inline constexpr int64_t kMaxPartBytes = int64_t{5} * 1024 * 1024 * 1024;

struct PartInfo {
  int number = 0;
  std::string etag;  // quoted uppercase hex MD5
  int64_t size = 0;
  absl::Time last_modified;
};

// What Initiate recorded for the object Complete writes.
struct UploadInfo {
  std::string bucket;
  std::string key;
  std::string content_type;
  std::map<std::string, std::string> metadata;  // x-oss-meta-*, lowercased
  bool forbid_overwrite = false;
  std::string acl = "default";  // x-oss-object-acl at Initiate
};

// One <Part> of a CompleteMultipartUpload body.
struct CompletePart {
  int number = 0;
  std::string etag;  // as sent; quotes optional
};

class UploadStore {
 public:
  // `objects` must outlive the store.
  UploadStore(std::string dir, ObjectStore& objects) : dir_(std::move(dir)), objects_(objects) {}

  // Returns the new upload id (32 uppercase hex digits).
  std::string Initiate(UploadInfo info);
  // Stores (or replaces) part `number` with the finished `data` (its ETag
  // is the MD5 computed while it was written; `data` must hash MD5).
  // NoSuchUpload unless `upload_id` belongs to bucket/key; InvalidArgument
  // for a number outside 1..10,000; EntityTooLarge above 5 GB. On an error
  // `data` keeps its file (deleted with it).
  std::variant<PartInfo, OssError> UploadPart(absl::string_view bucket, absl::string_view key,
                                              absl::string_view upload_id, int number,
                                              StagedFile& data);
  struct PartPage {
    std::vector<PartInfo> parts;  // ascending by number
    bool truncated = false;
    int next_marker = 0;
  };
  // Parts numbered above `marker`, at most `max_parts`.
  std::variant<PartPage, OssError> ListParts(absl::string_view bucket, absl::string_view key,
                                             absl::string_view upload_id, int marker,
                                             int max_parts) const;
  // Assembles the listed parts (all parts held when `all` is set) into the
  // object and ends the upload. Errors as OSS: InvalidPartOrder, InvalidPart,
  // EntityTooSmall, FileAlreadyExists (forbid-overwrite), NoSuchUpload.
  struct Completed {
    UploadInfo upload;
    ObjectInfo object;
    int part_count = 0;
  };
  std::variant<Completed, OssError> Complete(absl::string_view bucket, absl::string_view key,
                                             absl::string_view upload_id,
                                             const std::vector<CompletePart>& parts, bool all,
                                             bool forbid_overwrite);
  // Drops the upload and its parts. NoSuchUpload if unknown.
  std::optional<OssError> Abort(absl::string_view bucket, absl::string_view key,
                                absl::string_view upload_id);

  // Number of uploads in progress (tests).
  size_t InProgress() const;

 private:
  struct Upload {
    UploadInfo info;
    std::map<int, PartInfo> parts;
    bool completing = false;  // a Complete is assembling it
  };
  std::string PartPath(absl::string_view upload_id, int number) const;
  Upload* Find(absl::string_view bucket, absl::string_view key, absl::string_view upload_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Upload* Find(absl::string_view bucket, absl::string_view key,
                     absl::string_view upload_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  ObjectStore& objects_;
  mutable absl::Mutex mu_;
  std::map<std::string, Upload, std::less<>> uploads_ ABSL_GUARDED_BY(mu_);
};

// NoSuchUpload, as OSS words it.
OssError NoSuchUpload();

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_UPLOAD_STORE_H_
