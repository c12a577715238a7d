// ReloadingSslContext: the server-side TLS context of the HTTPS callback
// listener (tls.http), rebuilt when its certificate or key file changes, so
// a renewed certificate is served without a restart.
//
// Current() is called for each accepted connection, from any thread. At
// most once per `check_interval` it looks at the files' modification time,
// size and inode; when they changed it builds a new context from them
// (outside its lock) and hands that to later connections. A pair that does
// not load (half-written, key of another certificate) keeps the last good
// context in use and is logged; it is tried again at the next check.
// Established connections keep the context they started with (shared_ptr).
// TLS 1.2 and newer only.
#ifndef UPLOADBROKER_TLS_SSL_CONTEXT_H_
#define UPLOADBROKER_TLS_SSL_CONTEXT_H_

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace uploadbroker::tls {

class ReloadingSslContext {
 public:
  // Loads the files once; errors name "<section>.cert_file" or
  // "<section>.key_file" (tls/pem_files.h). `clock` (null: the real clock;
  // not owned, must outlive this) times the checks.
  static absl::StatusOr<std::unique_ptr<ReloadingSslContext>> Create(
      std::string section, std::string cert_file, std::string key_file,
      absl::Duration check_interval, const common::Clock* clock = nullptr);

  std::shared_ptr<boost::asio::ssl::context> Current() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ReloadingSslContext(std::string section, std::string cert_file, std::string key_file,
                      absl::Duration check_interval, const common::Clock* clock);
  // The files' identity (mtime, size, inode) as one string; empty when
  // either cannot be stat'ed.
  std::string Fingerprint() const;
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Load() const;

  const std::string section_;
  const std::string cert_file_;
  const std::string key_file_;
  const absl::Duration check_interval_;
  common::RealClock real_clock_;
  const common::Clock* const clock_;
  absl::Mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
  std::string fingerprint_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
  bool loading_ ABSL_GUARDED_BY(mu_) = false;  // one thread reloads at a time
};

}  // namespace uploadbroker::tls

#endif  // UPLOADBROKER_TLS_SSL_CONTEXT_H_
