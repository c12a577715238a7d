// Identity: who an authenticated RPC caller is, and the scope it may act in.
//
// The Authenticator builds one per configured caller (the YAML shape stays
// in config/ and auth/); everything past the RPC edge (issue, stream, rpc)
// sees only this. The scope checks below are the one place that decides
// whether a bucket or key lies inside a caller's scope. Plain values and
// pure functions; any thread.
#ifndef UPLOADBROKER_AUTH_IDENTITY_H_
#define UPLOADBROKER_AUTH_IDENTITY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace uploadbroker::auth {

// What a caller may authorize and see.
struct Scope {
  std::vector<std::string> buckets;
  std::vector<std::string> key_prefixes;   // empty: any key
  int64_t max_size = 5LL << 30;  // bytes; 5 GiB by default (one PUT/POST), multipart reaches more
  std::vector<std::string> content_types;  // empty: any
  absl::Duration max_ttl = absl::Hours(1);
};

struct Identity {
  std::string name;  // recorded as the intent's caller
  Scope scope;
  // Whose uploads, besides its own, the caller may read (GetUpload,
  // ListUploads, Subscribe, the multipart calls, AbortUpload): other callers'
  // names, or "*" for every upload, including ones recorded without a caller.
  // It never widens the scope: buckets and key prefixes still bound reads.
  std::vector<std::string> read_callers;
};

// The wildcard of Identity::read_callers.
inline constexpr char kAnyCaller[] = "*";

// True when the caller may read an upload issued to `owner` (the intent's
// caller; empty for records without one, readable only with "*").
bool MayRead(const Identity& caller, absl::string_view owner);

// The callers whose uploads `caller` may read, for a ledger query: itself
// and its read_callers, or empty when it may read every caller's ("*").
std::vector<std::string> ReadableCallers(const Identity& caller);

// PermissionDenied unless `bucket` is one of the caller's buckets.
absl::Status CheckBucket(const Identity& caller, absl::string_view bucket);

// PermissionDenied unless every key starting with `key` (or `key` itself,
// when exact) lies inside one of the caller's prefixes.
absl::Status CheckKey(const Identity& caller, absl::string_view key, bool is_prefix);

// True when `key` lies in the caller's scope (bucket and prefixes).
bool InScope(const Identity& caller, absl::string_view bucket, absl::string_view key);

}  // namespace uploadbroker::auth

#endif  // UPLOADBROKER_AUTH_IDENTITY_H_
