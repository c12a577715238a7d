#include "osssim/object_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/oss_names.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::osssim {
namespace {

constexpr size_t kCopyChunk = 1 << 20;

bool WriteAtomically(const std::string& path, absl::string_view data) {
  std::string tmp = absl::StrCat(path, ".tmp", common::RandomHex(4));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) {
      std::remove(tmp.c_str());
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool IsHexName(absl::string_view hex) {
  return hex.size() % 2 == 0 &&
         std::all_of(hex.begin(), hex.end(), [](char c) { return absl::ascii_isxdigit(c); });
}

}  // namespace

std::string ObjectStore::BucketDir(absl::string_view bucket) const {
  return absl::StrCat(dir_, "/", bucket);
}

void ObjectStore::RemoveLeftovers() {
  std::error_code ec;
  std::filesystem::remove_all(staging_dir(), ec);
  for (const auto& bucket : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = bucket.path().filename().string();
    if (!bucket.is_directory() || !common::IsValidBucketName(name)) continue;
    // Data files (and metadata temp files) no metadata refers to.
    std::set<std::string> referenced;
    std::vector<std::filesystem::path> candidates;
    std::error_code ec2;
    for (const auto& entry : std::filesystem::directory_iterator(bucket.path(), ec2)) {
      std::string file = entry.path().filename().string();
      if (absl::EndsWith(file, ".json")) {
        absl::string_view hex = absl::string_view(file).substr(0, file.size() - 5);
        if (!IsHexName(hex)) continue;
        auto meta = ReadMeta(name, absl::HexStringToBytes(hex));
        if (meta) referenced.insert(meta->second);
      } else if (absl::EndsWith(file, ".data") || absl::StrContains(file, ".tmp")) {
        candidates.push_back(entry.path());
      }
    }
    for (const auto& path : candidates) {
      if (referenced.count(path.filename().string()) == 0) std::filesystem::remove(path, ec2);
    }
  }
}

absl::StatusOr<ObjectInfo> ObjectStore::Put(absl::string_view bucket, absl::string_view key,
                                            StagedFile& staged, ObjectAttributes attributes) {
  if (!staged.finished()) return absl::FailedPreconditionError("the staged body is not complete");
  ObjectInfo info;
  if (attributes.etag.empty()) {
    info.etag = absl::StrCat("\"", absl::AsciiStrToUpper(common::HexEncode(staged.md5())), "\"");
    info.content_md5 = common::Base64Encode(staged.md5());
  } else {
    info.etag = std::move(attributes.etag);
  }
  info.size = static_cast<int64_t>(staged.size());
  info.content_type = std::move(attributes.content_type);
  info.crc64 = absl::StrCat(staged.crc64());
  info.metadata = std::move(attributes.metadata);
  info.acl = std::move(attributes.acl);
  const std::string hex = common::HexEncode(key);
  const std::string data_name = absl::StrCat(hex, ".", common::RandomHex(8), ".data");

  absl::MutexLock lock(&write_mu_);
  std::optional<std::pair<ObjectInfo, std::string>> old = ReadMeta(bucket, key);
  if (attributes.forbid_overwrite && old.has_value()) {
    return absl::AlreadyExistsError(
        "The object you specified already exists and can not be overwritten.");
  }
  std::error_code ec;
  std::filesystem::create_directories(BucketDir(bucket), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create bucket dir: ", ec.message()));
  const std::string data_path = absl::StrCat(BucketDir(bucket), "/", data_name);
  if (absl::Status s = staged.MoveTo(data_path); !s.ok()) return s;
  info.last_modified = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  if (absl::Status s = WriteMeta(bucket, key, info, data_name); !s.ok()) {
    std::remove(data_path.c_str());  // never committed
    return s;
  }
  if (old.has_value() && old->second != data_name) {
    std::remove(absl::StrCat(BucketDir(bucket), "/", old->second).c_str());
  }
  return info;
}

absl::StatusOr<ObjectInfo> ObjectStore::Put(absl::string_view bucket, absl::string_view key,
                                            absl::string_view data, std::string content_type,
                                            std::map<std::string, std::string> metadata,
                                            bool forbid_overwrite, std::string acl) {
  absl::StatusOr<std::shared_ptr<StagedFile>> staged =
      StagedFile::Create(staging_dir(), data.size());
  if (!staged.ok()) return staged.status();
  if (absl::Status s = (*staged)->Write(data); !s.ok()) return s;
  if (absl::Status s = (*staged)->Finish(); !s.ok()) return s;
  ObjectAttributes attributes;
  attributes.content_type = std::move(content_type);
  attributes.metadata = std::move(metadata);
  attributes.forbid_overwrite = forbid_overwrite;
  attributes.acl = std::move(acl);
  return Put(bucket, key, **staged, std::move(attributes));
}

absl::StatusOr<ObjectInfo> ObjectStore::PutConcatenation(absl::string_view bucket,
                                                         absl::string_view key,
                                                         const std::vector<std::string>& parts,
                                                         ObjectAttributes attributes) {
  // The multipart ETag is given: only the CRC-64 is computed on the way.
  absl::StatusOr<std::shared_ptr<StagedFile>> staged =
      StagedFile::Create(staging_dir(), UINT64_MAX, /*md5=*/false);
  if (!staged.ok()) return staged.status();
  std::string buffer(kCopyChunk, '\0');
  for (const std::string& part : parts) {
    int fd = ::open(part.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::InternalError("cannot read a part");
    ssize_t n = 0;
    while ((n = ::read(fd, buffer.data(), buffer.size())) > 0) {
      if (absl::Status s = (*staged)->Write(absl::string_view(buffer.data(), n)); !s.ok()) {
        ::close(fd);
        return s;
      }
    }
    ::close(fd);
    if (n < 0) return absl::InternalError("cannot read a part");
  }
  if (absl::Status s = (*staged)->Finish(); !s.ok()) return s;
  return Put(bucket, key, **staged, std::move(attributes));
}

absl::Status ObjectStore::WriteMeta(absl::string_view bucket, absl::string_view key,
                                    const ObjectInfo& info, const std::string& data_name) const {
  nlohmann::json meta = {{"key", std::string(key)},    {"etag", info.etag},
                         {"size", info.size},          {"content_type", info.content_type},
                         {"content_md5", info.content_md5}, {"crc64", info.crc64},
                         {"metadata", info.metadata},  {"acl", info.acl},
                         {"last_modified", absl::ToUnixSeconds(info.last_modified)},
                         {"data", data_name}};
  if (!WriteAtomically(absl::StrCat(BucketDir(bucket), "/", common::HexEncode(key), ".json"),
                       meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))) {
    return absl::InternalError("cannot write object metadata");
  }
  return absl::OkStatus();
}

std::optional<std::pair<ObjectInfo, std::string>> ObjectStore::ReadMeta(
    absl::string_view bucket, absl::string_view key) const {
  if (!common::IsValidBucketName(bucket)) return std::nullopt;
  const std::string hex = common::HexEncode(key);
  std::optional<std::string> text = ReadAll(absl::StrCat(BucketDir(bucket), "/", hex, ".json"));
  if (!text) return std::nullopt;
  nlohmann::json meta = nlohmann::json::parse(*text, nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) return std::nullopt;
  ObjectInfo info;
  info.etag = meta.value("etag", "");
  info.size = meta.value("size", int64_t{0});
  info.content_type = meta.value("content_type", "");
  info.content_md5 = meta.value("content_md5", "");
  info.crc64 = meta.value("crc64", "");
  info.last_modified = absl::FromUnixSeconds(meta.value("last_modified", int64_t{0}));
  info.acl = meta.value("acl", "default");
  if (meta.contains("metadata") && meta["metadata"].is_object()) {
    for (const auto& [k, v] : meta["metadata"].items()) {
      if (v.is_string()) info.metadata[k] = v.get<std::string>();
    }
  }
  // An older simulator's layout: <hex>.data, not named in the metadata.
  std::string data_name = meta.value("data", absl::StrCat(hex, ".data"));
  if (data_name.find('/') != std::string::npos) return std::nullopt;
  return std::make_pair(std::move(info), std::move(data_name));
}

std::optional<ObjectInfo> ObjectStore::Head(absl::string_view bucket, absl::string_view key) const {
  auto meta = ReadMeta(bucket, key);
  if (!meta) return std::nullopt;
  return std::move(meta->first);
}

std::optional<ObjectStore::Opened> ObjectStore::Open(absl::string_view bucket,
                                                     absl::string_view key) const {
  // A writer may replace the object between reading its metadata and
  // opening the data file it names (then deleted): read the metadata again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto meta = ReadMeta(bucket, key);
    if (!meta) return std::nullopt;
    int fd = ::open(absl::StrCat(BucketDir(bucket), "/", meta->second).c_str(),
                    O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return Opened{std::move(meta->first), fd};
  }
  return std::nullopt;
}

std::optional<std::string> ObjectStore::Read(absl::string_view bucket, absl::string_view key) const {
  std::optional<Opened> opened = Open(bucket, key);
  if (!opened) return std::nullopt;
  std::string data(static_cast<size_t>(opened->info.size), '\0');
  size_t have = 0;
  while (have < data.size()) {
    ssize_t n = ::pread(opened->fd, data.data() + have, data.size() - have,
                        static_cast<off_t>(have));
    if (n <= 0) break;
    have += static_cast<size_t>(n);
  }
  ::close(opened->fd);
  if (have != data.size()) return std::nullopt;
  return data;
}

ObjectStore::Listing ObjectStore::List(absl::string_view bucket, absl::string_view prefix,
                                       absl::string_view start_after, size_t max_keys) const {
  Listing out;
  if (!common::IsValidBucketName(bucket)) return out;
  // Objects are metadata files named by their hex key; a listing reads the
  // directory and sorts, which is plenty for a simulator's few thousand
  // objects. No data file is touched.
  std::vector<std::string> keys;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(BucketDir(bucket), ec)) {
    std::string name = entry.path().filename().string();
    if (!absl::EndsWith(name, ".json")) continue;
    absl::string_view hex = absl::string_view(name).substr(0, name.size() - 5);
    if (!IsHexName(hex)) continue;
    std::string key = absl::HexStringToBytes(hex);
    if (absl::StartsWith(key, prefix) && key > start_after) keys.push_back(std::move(key));
  }
  std::sort(keys.begin(), keys.end());
  for (std::string& key : keys) {
    if (out.objects.size() == max_keys) {
      out.truncated = true;
      break;
    }
    std::optional<ObjectInfo> info = Head(bucket, key);
    if (info) out.objects.emplace_back(std::move(key), *std::move(info));
  }
  return out;
}

}  // namespace uploadbroker::osssim
