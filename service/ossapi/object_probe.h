// ObjectProbe: asks OSS whether an object exists, and what it holds.
//
// The one HeadObject client of the broker. Two users: the reconciler
// (intents whose callback never arrived; OSS never retries a failed
// callback) and the callback path, which confirms every reported object
// before completing on it (ingest/confirmer.h).
//
// OssObjectProbe sends a HeadObject request presigned with V4
// (oss-protocol.md §3) through libcurl: no redirects, http/https only, one
// deadline (`timeout`) for connecting and answering. Connections are
// reused: finished curl handles go back to a small free list and keep their
// live connections (keep-alive), so a steady stream of HEADs to one endpoint
// costs one TCP/TLS handshake per concurrent request, not one per HEAD.
//
// Thread-safe; Head() blocks its caller for at most about `timeout`, so call
// it from a thread that may block (never an event loop).
#ifndef UPLOADBROKER_OSSAPI_OBJECT_PROBE_H_
#define UPLOADBROKER_OSSAPI_OBJECT_PROBE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "config/config.h"
#include "credentials/credential_provider.h"

namespace uploadbroker::ossapi {

// What HeadObject reports about an object.
struct ObjectFacts {
  int64_t size = 0;
  std::string etag;  // without the quotes, as callbacks carry it
  std::string content_type;
  std::string crc64;        // x-oss-hash-crc64ecma
  std::string content_md5;  // Content-MD5, when OSS has one
  std::string request_id;   // x-oss-request-id of the HEAD
  absl::Time last_modified = absl::InfinitePast();  // InfinitePast if not sent
};

class ObjectProbe {
 public:
  virtual ~ObjectProbe() = default;
  // The object's facts. NotFound when OSS answers 404 (no such object);
  // Unavailable naming the HTTP status or transport error for anything else
  // (the answer says nothing about the object).
  virtual absl::StatusOr<ObjectFacts> Head(const config::Bucket& bucket,
                                           const std::string& key) = 0;
};

class OssObjectProbe final : public ObjectProbe {
 public:
  // Not owned; both must outlive the probe. At most `max_idle` curl handles
  // (each with its connections) are kept between requests.
  OssObjectProbe(credentials::CredentialProvider& creds, const common::Clock& clock,
                 absl::Duration timeout = absl::Seconds(5), int max_idle = 8)
      : creds_(creds), clock_(clock), timeout_(timeout), max_idle_(max_idle) {}
  ~OssObjectProbe() override;

  absl::StatusOr<ObjectFacts> Head(const config::Bucket& bucket, const std::string& key) override;

  // Connections opened so far (for tests and benchmarks: reuse keeps it low).
  int64_t connections_opened() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void* TakeHandle() ABSL_LOCKS_EXCLUDED(mu_);    // a CURL*, reset; nullptr if out of memory
  void GiveBack(void* handle) ABSL_LOCKS_EXCLUDED(mu_);

  credentials::CredentialProvider& creds_;
  const common::Clock& clock_;
  const absl::Duration timeout_;
  const int max_idle_;
  mutable absl::Mutex mu_;
  std::vector<void*> idle_ ABSL_GUARDED_BY(mu_);
  int64_t connects_ ABSL_GUARDED_BY(mu_) = 0;
};

// Parses an HTTP-date (RFC 7231 IMF-fixdate, "Wed, 01 Dec 2026 17:20:00 GMT").
absl::StatusOr<absl::Time> ParseHttpDate(const std::string& text);

}  // namespace uploadbroker::ossapi

#endif  // UPLOADBROKER_OSSAPI_OBJECT_PROBE_H_
