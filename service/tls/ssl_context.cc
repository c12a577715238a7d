#include "tls/ssl_context.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "tls/pem_files.h"

namespace uploadbroker::tls {

namespace ssl = boost::asio::ssl;

absl::StatusOr<std::unique_ptr<ReloadingSslContext>> ReloadingSslContext::Create(
    std::string section, std::string cert_file, std::string key_file,
    absl::Duration check_interval, const common::Clock* clock) {
  std::unique_ptr<ReloadingSslContext> out(new ReloadingSslContext(
      std::move(section), std::move(cert_file), std::move(key_file), check_interval, clock));
  std::string fingerprint = out->Fingerprint();
  absl::StatusOr<std::shared_ptr<ssl::context>> first = out->Load();
  if (!first.ok()) return first.status();
  absl::MutexLock lock(&out->mu_);
  out->current_ = *std::move(first);
  out->fingerprint_ = std::move(fingerprint);
  out->next_check_ = out->clock_->Now() + check_interval;
  return out;
}

ReloadingSslContext::ReloadingSslContext(std::string section, std::string cert_file,
                                         std::string key_file, absl::Duration check_interval,
                                         const common::Clock* clock)
    : section_(std::move(section)),
      cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      check_interval_(check_interval),
      clock_(clock != nullptr ? clock : &real_clock_) {}

std::string ReloadingSslContext::Fingerprint() const {
  std::string out;
  for (const std::string* file : {&cert_file_, &key_file_}) {
    struct stat st {};
    if (stat(file->c_str(), &st) != 0) return "";
    absl::StrAppend(&out, st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/", st.st_size, "/",
                    st.st_ino, ";");
  }
  return out;
}

absl::StatusOr<std::shared_ptr<ssl::context>> ReloadingSslContext::Load() const {
  absl::Status checked = CheckCertAndKey(section_, cert_file_, key_file_);
  if (!checked.ok()) return checked;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file_, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(section_, ".cert_file: ", ec.message()));
  ctx->use_private_key_file(key_file_, ssl::context::pem, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(section_, ".key_file: ", ec.message()));
  return ctx;
}

std::shared_ptr<ssl::context> ReloadingSslContext::Current() {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    if (now < next_check_ || loading_) return current_;
    next_check_ = now + check_interval_;
    loading_ = true;
  }
  // File I/O outside the lock; other connections keep getting current_.
  std::string fingerprint = Fingerprint();
  std::string previous;
  {
    absl::MutexLock lock(&mu_);
    previous = fingerprint_;
  }
  std::shared_ptr<ssl::context> loaded;
  if (!fingerprint.empty() && fingerprint != previous) {
    absl::StatusOr<std::shared_ptr<ssl::context>> next = Load();
    if (next.ok()) {
      loaded = *std::move(next);
      spdlog::info("{}: reloaded the certificate from {}", section_, cert_file_);
    } else {
      spdlog::warn("{}: keeping the previous certificate: {}", section_, std::string(next.status().message()));
    }
  }
  absl::MutexLock lock(&mu_);
  loading_ = false;
  if (loaded != nullptr) {
    current_ = std::move(loaded);
    fingerprint_ = std::move(fingerprint);
  }
  return current_;
}

}  // namespace uploadbroker::tls
