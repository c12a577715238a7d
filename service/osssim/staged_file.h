// StagedFile: bytes on their way to becoming an object (or a part), written
// to a fresh temp file under a staging directory while their MD5 (when asked
// for) and CRC-64/ECMA-182 are computed, so nothing is ever held whole in
// memory or read back to be hashed. It is an http::BodySink: the server
// streams a request body into it as it arrives.
//
// Ownership: the temp file belongs to the StagedFile until MoveTo renames it
// away; the destructor deletes it otherwise (a body cut off, refused by a
// check, or a failed store), so a refused upload leaves nothing behind.
// Threads: one at a time (the server's loop thread while the body arrives,
// then the worker that handles the request).
#ifndef UPLOADBROKER_OSSSIM_STAGED_FILE_H_
#define UPLOADBROKER_OSSSIM_STAGED_FILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/crypto.h"
#include "http/message.h"

namespace uploadbroker::osssim {

class StagedFile : public http::BodySink {
 public:
  // A new empty temp file in `dir` (created if missing), accepting at most
  // `max_bytes`. With `md5` false no MD5 is computed (md5() stays empty).
  static absl::StatusOr<std::shared_ptr<StagedFile>> Create(const std::string& dir,
                                                            uint64_t max_bytes, bool md5 = true);
  ~StagedFile() override;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // http::BodySink. Write appends and hashes (ResourceExhausted past
  // max_bytes, Internal for an I/O error); Finish closes the file and
  // completes the digests. Neither may be called after Finish.
  uint64_t max_bytes() const override { return max_bytes_; }
  absl::Status Write(absl::string_view piece) override;
  absl::Status Finish() override;

  // After Finish.
  bool finished() const { return finished_; }
  uint64_t size() const { return size_; }
  const std::string& md5() const { return md5_; }  // raw 16 bytes, or ""
  uint64_t crc64() const { return crc64_; }
  const std::string& path() const { return path_; }

  // Renames the finished file to `target` (same file system; replaces what
  // is there atomically). Afterwards the file is no longer this object's.
  absl::Status MoveTo(const std::string& target);

 private:
  StagedFile(std::string path, int fd, uint64_t max_bytes, bool md5);

  const std::string path_;
  int fd_;  // -1 once finished
  const uint64_t max_bytes_;
  std::optional<common::Md5Hasher> md5_hasher_;
  std::string md5_;
  uint64_t crc64_ = 0;
  uint64_t size_ = 0;
  bool finished_ = false;
  bool moved_ = false;
};

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_STAGED_FILE_H_
