// ObjectProbe: asks OSS whether an object exists, and what it holds.
//
// The reconciler uses it for intents whose callback never arrived (OSS
// never retries a failed callback). OssObjectProbe sends a HeadObject
// request presigned with V4 (oss-protocol.md §3) through libcurl: no
// redirects, short timeouts, http/https only. Thread-safe.
#ifndef UPLOADBROKER_RECONCILE_OBJECT_PROBE_H_
#define UPLOADBROKER_RECONCILE_OBJECT_PROBE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "config/config.h"
#include "credentials/credential_provider.h"

namespace uploadbroker::reconcile {

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
  // Not owned; both must outlive the probe.
  OssObjectProbe(credentials::CredentialProvider& creds, const common::Clock& clock,
                 absl::Duration timeout = absl::Seconds(5))
      : creds_(creds), clock_(clock), timeout_(timeout) {}

  absl::StatusOr<ObjectFacts> Head(const config::Bucket& bucket, const std::string& key) override;

 private:
  credentials::CredentialProvider& creds_;
  const common::Clock& clock_;
  const absl::Duration timeout_;
};

// Parses an HTTP-date (RFC 7231 IMF-fixdate, "Wed, 01 Dec 2026 17:20:00 GMT").
absl::StatusOr<absl::Time> ParseHttpDate(const std::string& text);

}  // namespace uploadbroker::reconcile

#endif  // UPLOADBROKER_RECONCILE_OBJECT_PROBE_H_
