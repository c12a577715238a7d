#include "client/resume_state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::client::internal {
namespace {

constexpr int kFormat = 2;  // 1 (no "format"): bucket, key, size only
// 10,000 journal lines are ~0.5 MB: anything larger is not a state file (and
// is never read into memory looking for a first line).
constexpr int64_t kMaxStateBytes = int64_t{4} << 20;

std::string DirOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// `path` can be created or replaced: its directory is writable (rename
// needs that), and the file, if present, too.
bool Writable(const std::string& path) {
  if (access(DirOf(path).c_str(), W_OK | X_OK) != 0) return false;
  return access(path.c_str(), F_OK) != 0 || access(path.c_str(), W_OK) == 0;
}

std::string Header(const ResumeState& s) {
  return nlohmann::json{{"format", kFormat},        {"upload_id", s.upload_id},
                        {"bucket", s.bucket},       {"key", s.key},
                        {"size", s.file.size},      {"mtime_ns", s.file.mtime_ns}}
      .dump();
}

std::string PartLine(int n, const std::string& md5) {
  return nlohmann::json{{"part", n}, {"md5", md5}}.dump();
}

}  // namespace

std::optional<FileIdentity> IdentityOf(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return std::nullopt;
  FileIdentity id;
  id.size = static_cast<int64_t>(st.st_size);
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return id;
}

std::optional<ResumeState> LoadResumeState(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxStateBytes) {
    return std::nullopt;
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  nlohmann::json h = nlohmann::json::parse(line, nullptr, false);
  if (!h.is_object() || !h.contains("upload_id") || !h["upload_id"].is_string()) {
    return std::nullopt;
  }
  ResumeState s;
  s.upload_id = h.value("upload_id", "");
  s.bucket = h.value("bucket", "");
  s.key = h.value("key", "");
  s.file.size = h.value("size", int64_t{-1});
  s.file.mtime_ns = h.value("format", 1) >= kFormat ? h.value("mtime_ns", int64_t{-1}) : -1;
  if (s.upload_id.empty()) return std::nullopt;
  while (std::getline(in, line)) {
    nlohmann::json p = nlohmann::json::parse(line, nullptr, false);  // torn line: discarded
    if (!p.is_object() || !p.contains("part") || !p["part"].is_number_integer() ||
        !p.contains("md5") || !p["md5"].is_string()) {
      continue;
    }
    s.sent_md5[p["part"].get<int>()] = p["md5"].get<std::string>();
  }
  return s;
}

bool WriteResumeState(const std::string& path, const ResumeState& state) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << Header(state) << "\n";
    for (const auto& [n, md5] : state.sent_md5) out << PartLine(n, md5) << "\n";
    out.flush();
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

bool AppendSentPart(const std::string& path, int part_number, const std::string& md5_hex) {
  std::ofstream out(path, std::ios::app);
  out << PartLine(part_number, md5_hex) << "\n";
  out.flush();
  return static_cast<bool>(out);
}

std::string Md5Hex(absl::string_view data) {
  return absl::AsciiStrToUpper(common::HexEncode(common::Md5(data)));
}

std::string Md5OfEtag(absl::string_view etag) {
  etag = absl::StripAsciiWhitespace(etag);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  if (etag.size() != 32) return "";
  for (char c : etag) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return "";
  }
  return absl::AsciiStrToUpper(etag);
}

std::string DefaultStatePath(const std::string& file) { return file + ".ubupload"; }

std::string ResolveStatePath(const std::string& file, const std::string& explicit_path) {
  if (!explicit_path.empty()) return Writable(explicit_path) ? explicit_path : "";
  const std::string next_to = DefaultStatePath(file);
  if (Writable(next_to)) return next_to;
  std::string base;
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && xdg[0] == '/') {
    base = xdg;
  } else if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    base = absl::StrCat(home, "/.local/state");
  } else {
    return "";
  }
  const std::string dir = base + "/ubctl";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::path abs = std::filesystem::absolute(file, ec);
  if (ec) return "";
  // The file's name (readable) and a digest of its absolute path (unique).
  std::string name = abs.filename().string();
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      c = '_';
    }
  }
  const std::string path =
      absl::StrCat(dir, "/", name.substr(0, 64), "-",
                   common::HexEncode(common::Sha256(abs.string())).substr(0, 16), ".ubupload");
  return Writable(path) ? path : "";
}

}  // namespace uploadbroker::client::internal
