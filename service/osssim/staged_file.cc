#include "osssim/staged_file.h"

#include <fcntl.h>
#include <lzma.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace uploadbroker::osssim {

absl::StatusOr<std::shared_ptr<StagedFile>> StagedFile::Create(const std::string& dir,
                                                               uint64_t max_bytes, bool md5) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::string path = absl::StrCat(dir, "/", common::RandomHex(12), ".tmp");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create a staging file: ", std::strerror(errno)));
  }
  return std::shared_ptr<StagedFile>(new StagedFile(std::move(path), fd, max_bytes, md5));
}

StagedFile::StagedFile(std::string path, int fd, uint64_t max_bytes, bool md5)
    : path_(std::move(path)), fd_(fd), max_bytes_(max_bytes) {
  if (md5) md5_hasher_.emplace();
}

StagedFile::~StagedFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!moved_) ::unlink(path_.c_str());
}

absl::Status StagedFile::Write(absl::string_view piece) {
  if (fd_ < 0) return absl::FailedPreconditionError("staging file already finished");
  if (piece.size() > max_bytes_ - size_) {
    return absl::ResourceExhaustedError("the body is larger than allowed");
  }
  size_t done = 0;
  while (done < piece.size()) {
    ssize_t n = ::write(fd_, piece.data() + done, piece.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::InternalError(absl::StrCat("cannot write a staging file: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  if (md5_hasher_) md5_hasher_->Update(piece);
  // liblzma's CRC-64 is ECMA-182 as OSS computes it (same as XZ).
  crc64_ = lzma_crc64(reinterpret_cast<const uint8_t*>(piece.data()), piece.size(), crc64_);
  size_ += piece.size();
  return absl::OkStatus();
}

absl::Status StagedFile::Finish() {
  if (fd_ < 0) return absl::FailedPreconditionError("staging file already finished");
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return absl::InternalError("cannot close a staging file");
  if (md5_hasher_) md5_ = md5_hasher_->Final();
  finished_ = true;
  return absl::OkStatus();
}

absl::Status StagedFile::MoveTo(const std::string& target) {
  if (!finished_ || moved_) return absl::FailedPreconditionError("staging file not finished");
  if (std::rename(path_.c_str(), target.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot store: ", std::strerror(errno)));
  }
  moved_ = true;
  return absl::OkStatus();
}

}  // namespace uploadbroker::osssim
