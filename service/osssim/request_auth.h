// Signature checks for object requests other than PostObject (PutObject,
// HeadObject, GetObject): V1 and V4 presigned URLs (oss-protocol.md §3) and
// V1/V4 Authorization headers, recomputed with the policy/ signers. Pure
// function, thread-safe.
#ifndef UPLOADBROKER_OSSSIM_REQUEST_AUTH_H_
#define UPLOADBROKER_OSSSIM_REQUEST_AUTH_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "http/message.h"
#include "osssim/oss_error.h"
#include "osssim/post_policy_check.h"

namespace uploadbroker::osssim {

// Query parameters in wire order, percent-decoded ('+' stays '+').
using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Splits a raw query string; undecodable items are kept as sent.
QueryParams ParseQuery(absl::string_view raw);

// The first value of `name`, or nullopt when absent.
std::optional<std::string> QueryParam(const QueryParams& query, absl::string_view name);

// nullopt if `req` (for object `key` in `bucket`) is signed by `creds`;
// otherwise the error OSS answers (AccessDenied for no or expired
// signature, SignatureDoesNotMatch, InvalidArgument for a mix of methods).
std::optional<OssError> CheckRequestSignature(const http::Request& req, const std::string& bucket,
                                              const std::string& key, const QueryParams& query,
                                              const SimCredentials& creds, absl::Time now);

}  // namespace uploadbroker::osssim

#endif  // UPLOADBROKER_OSSSIM_REQUEST_AUTH_H_
