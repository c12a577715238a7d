#include "credentials/credential_provider.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::credentials {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read credential file"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t MTimeNanos(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

absl::StatusOr<std::string> StsField(const nlohmann::json& j,
                                     const std::string& path, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": missing or not a string"));
  }
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<std::unique_ptr<CredentialProvider>> CredentialProvider::Create(
    const config::CredentialSource& source, const common::Clock* clock) {
  std::unique_ptr<CredentialProvider> p(new CredentialProvider(source, clock));
  UB_ASSIGN_OR_RETURN(policy::Credential cred, p->Read());
  absl::MutexLock lock(&p->mu_);
  p->current_ = std::move(cred);
  p->stamp_ = p->ModificationStamp();
  p->last_check_ = clock->Now();
  return p;
}

int64_t CredentialProvider::ModificationStamp() const {
  if (!source_.sts_file.empty()) return MTimeNanos(source_.sts_file);
  return MTimeNanos(source_.access_key_id_file) ^ (MTimeNanos(source_.access_key_secret_file) << 1);
}

absl::StatusOr<policy::Credential> CredentialProvider::Read() const {
  policy::Credential c;
  if (source_.sts_file.empty()) {
    UB_ASSIGN_OR_RETURN(std::string id, ReadFile(source_.access_key_id_file));
    UB_ASSIGN_OR_RETURN(std::string secret, ReadFile(source_.access_key_secret_file));
    c.access_key_id = std::string(absl::StripAsciiWhitespace(id));
    c.access_key_secret = std::string(absl::StripAsciiWhitespace(secret));
    if (c.access_key_id.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source_.access_key_id_file, ": file is empty"));
    }
    if (c.access_key_secret.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source_.access_key_secret_file, ": file is empty"));
    }
    return c;
  }
  const std::string& path = source_.sts_file;
  UB_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a JSON object"));
  UB_ASSIGN_OR_RETURN(c.access_key_id, StsField(j, path, "AccessKeyId"));
  UB_ASSIGN_OR_RETURN(c.access_key_secret, StsField(j, path, "AccessKeySecret"));
  UB_ASSIGN_OR_RETURN(c.security_token, StsField(j, path, "SecurityToken"));
  UB_ASSIGN_OR_RETURN(std::string expiration, StsField(j, path, "Expiration"));
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, expiration, &c.expiration, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": Expiration: not an RFC 3339 time: ", err));
  }
  return c;
}

absl::StatusOr<policy::Credential> CredentialProvider::Get() {
  absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    if (now - last_check_ < absl::Seconds(1)) {
      if (now >= current_.expiration) {
        return absl::UnavailableError("the STS credential has expired; refresh the credential file");
      }
      return current_;
    }
    last_check_ = now;
  }
  // File I/O happens outside the lock.
  int64_t stamp = ModificationStamp();
  absl::StatusOr<policy::Credential> fresh;
  bool changed;
  {
    absl::MutexLock lock(&mu_);
    changed = stamp != stamp_;
  }
  if (changed) fresh = Read();
  absl::MutexLock lock(&mu_);
  if (changed && fresh.ok()) {
    current_ = *std::move(fresh);
    stamp_ = stamp;
  }
  // A half-written or broken file keeps the last good credential in use.
  if (now >= current_.expiration) {
    return absl::UnavailableError("the STS credential has expired; refresh the credential file");
  }
  return current_;
}

}  // namespace uploadbroker::credentials
