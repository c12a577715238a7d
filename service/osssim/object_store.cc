#include "osssim/object_store.h"

#include <lzma.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/oss_names.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::osssim {
namespace {

bool WriteAtomically(const std::string& path, absl::string_view data) {
  std::string tmp = absl::StrCat(path, ".tmp", common::RandomHex(4));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::optional<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string ObjectStore::Path(absl::string_view bucket, absl::string_view key,
                              absl::string_view ext) const {
  return absl::StrCat(dir_, "/", bucket, "/", common::HexEncode(key), ext);
}

absl::StatusOr<ObjectInfo> ObjectStore::Put(absl::string_view bucket, absl::string_view key,
                                            absl::string_view data, std::string content_type,
                                            std::map<std::string, std::string> metadata,
                                            bool forbid_overwrite, std::string acl) {
  absl::MutexLock lock(&write_mu_);
  if (forbid_overwrite && Head(bucket, key).has_value()) {
    return absl::AlreadyExistsError("The object you specified already exists and can not be overwritten.");
  }
  std::error_code ec;
  std::filesystem::create_directories(absl::StrCat(dir_, "/", bucket), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create bucket dir: ", ec.message()));
  ObjectInfo info;
  std::string md5 = common::Md5(data);
  info.etag = absl::StrCat("\"", absl::AsciiStrToUpper(common::HexEncode(md5)), "\"");
  info.size = static_cast<int64_t>(data.size());
  info.content_type = std::move(content_type);
  info.content_md5 = common::Base64Encode(md5);
  // liblzma's CRC-64 is ECMA-182 as OSS computes it (same as XZ).
  info.crc64 = absl::StrCat(
      lzma_crc64(reinterpret_cast<const uint8_t*>(data.data()), data.size(), 0));
  info.metadata = std::move(metadata);
  info.acl = std::move(acl);
  info.last_modified = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  if (!WriteAtomically(Path(bucket, key, ".data"), data)) {
    return absl::InternalError("cannot write object");
  }
  if (absl::Status s = WriteMeta(bucket, key, info); !s.ok()) return s;
  return info;
}

absl::Status ObjectStore::WriteMeta(absl::string_view bucket, absl::string_view key,
                                    const ObjectInfo& info) const {
  nlohmann::json meta = {{"key", std::string(key)},    {"etag", info.etag},
                         {"size", info.size},          {"content_type", info.content_type},
                         {"content_md5", info.content_md5}, {"crc64", info.crc64},
                         {"metadata", info.metadata},  {"acl", info.acl},
                         {"last_modified", absl::ToUnixSeconds(info.last_modified)}};
  if (!WriteAtomically(Path(bucket, key, ".json"),
                       meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))) {
    return absl::InternalError("cannot write object metadata");
  }
  return absl::OkStatus();
}

absl::StatusOr<ObjectInfo> ObjectStore::PutConcatenation(
    absl::string_view bucket, absl::string_view key, const std::vector<std::string>& parts,
    std::string etag, std::string content_type, std::map<std::string, std::string> metadata,
    bool forbid_overwrite, std::string acl) {
  absl::MutexLock lock(&write_mu_);
  if (forbid_overwrite && Head(bucket, key).has_value()) {
    return absl::AlreadyExistsError("The object you specified already exists and can not be overwritten.");
  }
  std::error_code ec;
  std::filesystem::create_directories(absl::StrCat(dir_, "/", bucket), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create bucket dir: ", ec.message()));
  ObjectInfo info;
  info.etag = std::move(etag);
  info.content_type = std::move(content_type);
  info.metadata = std::move(metadata);
  info.acl = std::move(acl);
  std::string path = Path(bucket, key, ".data");
  std::string tmp = absl::StrCat(path, ".tmp", common::RandomHex(4));
  uint64_t crc = 0;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    std::vector<char> buffer(1 << 20);
    for (const std::string& part : parts) {
      std::ifstream in(part, std::ios::binary);
      if (!in) return absl::InternalError("cannot read a part");
      while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        std::streamsize n = in.gcount();
        if (n <= 0) break;
        crc = lzma_crc64(reinterpret_cast<const uint8_t*>(buffer.data()),
                         static_cast<size_t>(n), crc);
        out.write(buffer.data(), n);
        info.size += n;
      }
    }
    if (!out) return absl::InternalError("cannot write object");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError("cannot write object");
  }
  info.crc64 = absl::StrCat(crc);
  info.last_modified = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  if (absl::Status s = WriteMeta(bucket, key, info); !s.ok()) return s;
  return info;
}

std::optional<ObjectInfo> ObjectStore::Head(absl::string_view bucket, absl::string_view key) const {
  if (!common::IsValidBucketName(bucket)) return std::nullopt;
  std::optional<std::string> text = ReadAll(Path(bucket, key, ".json"));
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
  return info;
}

ObjectStore::Listing ObjectStore::List(absl::string_view bucket, absl::string_view prefix,
                                       absl::string_view start_after, size_t max_keys) const {
  Listing out;
  if (!common::IsValidBucketName(bucket)) return out;
  // Objects are files named by their hex key; a listing reads the directory
  // and sorts, which is plenty for a simulator's few thousand objects.
  std::vector<std::string> keys;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(absl::StrCat(dir_, "/", bucket), ec)) {
    std::string name = entry.path().filename().string();
    if (!absl::EndsWith(name, ".json")) continue;
    absl::string_view hex = absl::string_view(name).substr(0, name.size() - 5);
    if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), [](char c) {
          return absl::ascii_isxdigit(c);
        })) {
      continue;
    }
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

std::optional<std::string> ObjectStore::Read(absl::string_view bucket, absl::string_view key) const {
  if (!common::IsValidBucketName(bucket)) return std::nullopt;
  return ReadAll(Path(bucket, key, ".data"));
}

}  // namespace uploadbroker::osssim
