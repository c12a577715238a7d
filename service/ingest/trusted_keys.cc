#include "ingest/trusted_keys.h"

#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace uploadbroker::ingest {
namespace {

constexpr size_t kMaxKeyBytes = 16 * 1024;

size_t Collect(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() + size * n > kMaxKeyBytes) return 0;  // aborts the transfer
  s->append(data, size * n);
  return size * n;
}

}  // namespace

absl::StatusOr<std::string> FetchKeyPem(const std::string& url) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("fetching ", url, ": ", curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return absl::UnavailableError(absl::StrCat("fetching ", url, ": HTTP ", status,
                                               status / 100 == 3 ? " (redirects are not followed)" : ""));
  }
  return body;
}

absl::StatusOr<std::vector<callback::TrustedKey>> LoadTrustedKeys(const config::Config& config) {
  std::vector<callback::TrustedKey> keys;
  if (config.trusted_key_url.empty()) {
    if (!config.trusted_key_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          config.source, ": callback.trusted_key_file: needs callback.trusted_key_url (the URL the "
          "simulator sends in x-oss-pub-key-url)"));
    }
    return keys;
  }
  std::string pem;
  if (!config.trusted_key_file.empty()) {
    std::ifstream in(config.trusted_key_file, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(absl::StrCat(config.source, ": callback.trusted_key_file: cannot read ",
                                              config.trusted_key_file));
    }
    std::stringstream s;
    s << in.rdbuf();
    pem = s.str();
  } else {
    absl::StatusOr<std::string> fetched = FetchKeyPem(config.trusted_key_url);
    if (!fetched.ok()) {
      return absl::UnavailableError(absl::StrCat(config.source, ": callback.trusted_key_url: ",
                                                 fetched.status().message()));
    }
    pem = *std::move(fetched);
  }
  absl::StatusOr<callback::PublicKey> key = callback::PublicKey::FromPem(pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source, ": callback.trusted_key_", config.trusted_key_file.empty() ? "url" : "file",
        ": not an RSA public key: ", key.status().message()));
  }
  keys.push_back(callback::TrustedKey{config.trusted_key_url, *std::move(key)});
  return keys;
}

}  // namespace uploadbroker::ingest
