// Extra trusted callback keys, for development against a simulator only.
//
// By default the broker trusts nothing but OSS's pinned key. When the
// operator sets callback.trusted_key_url, callbacks naming exactly that URL
// in x-oss-pub-key-url are verified with the key read from
// callback.trusted_key_file, or, without a file, fetched once at startup
// from the URL with libcurl (no redirects, 2 s timeout, 16 KiB cap). The
// key is parsed once and kept for the process lifetime.
#ifndef UPLOADBROKER_INGEST_TRUSTED_KEYS_H_
#define UPLOADBROKER_INGEST_TRUSTED_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "callback/verifier.h"
#include "config/config.h"

namespace uploadbroker::ingest {

// Empty when nothing extra is configured. Errors name the config field.
absl::StatusOr<std::vector<callback::TrustedKey>> LoadTrustedKeys(
    const config::Config& config);

// GET `url` with the rules above; the body on 200, an error otherwise
// (a redirect is an error, not followed).
absl::StatusOr<std::string> FetchKeyPem(const std::string& url);

}  // namespace uploadbroker::ingest

#endif  // UPLOADBROKER_INGEST_TRUSTED_KEYS_H_
