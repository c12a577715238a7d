#include "osssim/upload_store.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"

namespace uploadbroker::osssim {
namespace {

OssError InvalidPart() {
  return {400, "InvalidPart",
          "One or more of the specified parts could not be found or the specified entity tag "
          "might not have matched the part's entity tag."};
}

std::string Unquoted(absl::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return absl::AsciiStrToUpper(etag);
}

// The 16 bytes a part's hex ETag stands for ("" if it is not hex).
std::string HexBytes(absl::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    int v = 0;
    for (char c : hex.substr(i, 2)) {
      v <<= 4;
      if (absl::ascii_isdigit(c)) v |= c - '0';
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return "";
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

}  // namespace

OssError NoSuchUpload() {
  return {404, "NoSuchUpload",
          "The specified upload does not exist. The upload ID may be invalid, or the upload may "
          "have been aborted or completed."};
}

std::string UploadStore::PartPath(absl::string_view upload_id, int number) const {
  return absl::StrCat(dir_, "/.uploads/", upload_id, "/", number, ".part");
}

UploadStore::Upload* UploadStore::Find(absl::string_view bucket, absl::string_view key,
                                       absl::string_view upload_id) {
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.completing || it->second.info.bucket != bucket ||
      it->second.info.key != key) {
    return nullptr;
  }
  return &it->second;
}

const UploadStore::Upload* UploadStore::Find(absl::string_view bucket, absl::string_view key,
                                             absl::string_view upload_id) const {
  auto it = uploads_.find(upload_id);
  if (it == uploads_.end() || it->second.completing || it->second.info.bucket != bucket ||
      it->second.info.key != key) {
    return nullptr;
  }
  return &it->second;
}

std::string UploadStore::Initiate(UploadInfo info) {
  std::string id = absl::AsciiStrToUpper(common::RandomHex(16));
  std::error_code ec;
  std::filesystem::create_directories(absl::StrCat(dir_, "/.uploads/", id), ec);
  absl::MutexLock lock(&mu_);
  uploads_[id].info = std::move(info);
  return id;
}

std::variant<PartInfo, OssError> UploadStore::UploadPart(absl::string_view bucket,
                                                         absl::string_view key,
                                                         absl::string_view upload_id, int number,
                                                         StagedFile& data) {
  if (number < 1 || number > kMaxPartNumber) {
    return InvalidArgument("Part number must be an integer between 1 and 10000, inclusive.");
  }
  if (static_cast<int64_t>(data.size()) > kMaxPartBytes) {
    return OssError{400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size."};
  }
  if (!data.finished() || data.md5().empty()) {
    return OssError{500, "InternalError", "the part was not received whole"};
  }
  PartInfo part;
  part.number = number;
  part.size = static_cast<int64_t>(data.size());
  part.etag = absl::StrCat("\"", absl::AsciiStrToUpper(common::HexEncode(data.md5())), "\"");
  part.last_modified = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  absl::MutexLock lock(&mu_);
  Upload* upload = Find(bucket, key, upload_id);
  if (upload == nullptr) return NoSuchUpload();  // unknown, aborted or completed
  if (!data.MoveTo(PartPath(upload_id, number)).ok()) {
    return OssError{500, "InternalError", "cannot store the part"};
  }
  upload->parts[number] = part;
  return part;
}

std::variant<UploadStore::PartPage, OssError> UploadStore::ListParts(
    absl::string_view bucket, absl::string_view key, absl::string_view upload_id, int marker,
    int max_parts) const {
  absl::MutexLock lock(&mu_);
  const Upload* upload = Find(bucket, key, upload_id);
  if (upload == nullptr) return NoSuchUpload();
  PartPage page;
  for (auto it = upload->parts.upper_bound(marker); it != upload->parts.end(); ++it) {
    if (static_cast<int>(page.parts.size()) == max_parts) {
      page.truncated = true;
      break;
    }
    page.parts.push_back(it->second);
    page.next_marker = it->first;
  }
  return page;
}

std::variant<UploadStore::Completed, OssError> UploadStore::Complete(
    absl::string_view bucket, absl::string_view key, absl::string_view upload_id,
    const std::vector<CompletePart>& listed, bool all, bool forbid_overwrite) {
  std::vector<PartInfo> chosen;
  UploadInfo info;
  {
    absl::MutexLock lock(&mu_);
    Upload* upload = Find(bucket, key, upload_id);
    if (upload == nullptr) return NoSuchUpload();
    if (all) {
      for (const auto& [number, part] : upload->parts) chosen.push_back(part);
    } else {
      for (size_t i = 1; i < listed.size(); ++i) {
        if (listed[i].number <= listed[i - 1].number) {
          return OssError{400, "InvalidPartOrder",
                          "The list of parts was not in ascending order. Parts list must be "
                          "specified in order by part number."};
        }
      }
      for (const CompletePart& p : listed) {
        auto it = upload->parts.find(p.number);
        if (it == upload->parts.end() || Unquoted(it->second.etag) != Unquoted(p.etag)) {
          return InvalidPart();
        }
        chosen.push_back(it->second);
      }
    }
    if (chosen.empty()) return InvalidPart();
    for (size_t i = 0; i + 1 < chosen.size(); ++i) {
      if (chosen[i].size < kMinPartBytes) {
        return OssError{400, "EntityTooSmall",
                        absl::StrCat("Your proposed upload is smaller than the minimum allowed "
                                     "size. Part ", chosen[i].number, " is ", chosen[i].size,
                                     " bytes; every part but the last must be at least ",
                                     kMinPartBytes, " bytes.")};
      }
    }
    if ((forbid_overwrite || upload->info.forbid_overwrite) && objects_.Head(bucket, key)) {
      return OssError{409, "FileAlreadyExists", "The object you specified already exists and can not be overwritten."};
    }
    upload->completing = true;
    info = upload->info;
  }
  // The multipart ETag: MD5 over the parts' binary MD5s, then "-<count>".
  std::string md5s;
  std::vector<std::string> paths;
  for (const PartInfo& p : chosen) {
    md5s += HexBytes(Unquoted(p.etag));
    paths.push_back(PartPath(upload_id, p.number));
  }
  std::string etag = absl::StrCat(
      "\"", absl::AsciiStrToUpper(common::HexEncode(common::Md5(md5s))), "-", chosen.size(), "\"");
  ObjectAttributes attributes;
  attributes.content_type = info.content_type;
  attributes.metadata = info.metadata;
  attributes.acl = info.acl;
  attributes.forbid_overwrite = forbid_overwrite || info.forbid_overwrite;
  attributes.etag = std::move(etag);
  absl::StatusOr<ObjectInfo> object = objects_.PutConcatenation(bucket, key, paths,
                                                                std::move(attributes));
  {
    absl::MutexLock lock(&mu_);
    auto it = uploads_.find(upload_id);
    if (!object.ok()) {
      it->second.completing = false;
      if (absl::IsAlreadyExists(object.status())) {
        return OssError{409, "FileAlreadyExists", std::string(object.status().message())};
      }
      return OssError{500, "InternalError", std::string(object.status().message())};
    }
    uploads_.erase(it);
  }
  std::error_code ec;
  std::filesystem::remove_all(absl::StrCat(dir_, "/.uploads/", upload_id), ec);
  return Completed{std::move(info), *std::move(object), static_cast<int>(chosen.size())};
}

std::optional<OssError> UploadStore::Abort(absl::string_view bucket, absl::string_view key,
                                           absl::string_view upload_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = uploads_.find(upload_id);
    if (Find(bucket, key, upload_id) == nullptr) return NoSuchUpload();
    uploads_.erase(it);
  }
  std::error_code ec;
  std::filesystem::remove_all(absl::StrCat(dir_, "/.uploads/", upload_id), ec);
  return std::nullopt;
}

size_t UploadStore::InProgress() const {
  absl::MutexLock lock(&mu_);
  return uploads_.size();
}

}  // namespace uploadbroker::osssim
