// Whether a stored object was written under one authorization: the rule
// both settlement paths apply before an object completes an intent
// (ingest/ after its HeadObject, reconcile/ after its HeadObject or
// listing), so an object is tied to an authorization the same way
// whichever way it was reported.
//
// An OSS callback's signature does not say when the object was written or
// under which authorization (docs/security.md), and CheckAgainstIntent
// only compares the object with the intent's limits. An object belongs to
// `intent` when:
//   * it was written no earlier than the intent was created, less
//     kClockSkew (Last-Modified has whole seconds, so the creation time is
//     taken whole too; a missing Last-Modified fails this);
//   * no other upload's completion accounts for it: one names the same key
//     and ETag (when both are known) and was recorded no earlier than the
//     object was written, less kClockSkew (a completion without a time
//     counts); a different ETag is a different object, so an overwrite
//     right after another completion is not mistaken for it. Authorizations pin
//     forbid-overwrite by default, so the object a completed key holds is
//     that upload's, and a second authorization for the key cannot have
//     written a new one; an object written after the other completion was
//     recorded can only be a later overwrite (allow_overwrite), which may
//     be this authorization's;
//   * no later exact-key authorization for the key was issued before it
//     was written (the object is then taken to be that one's upload).
// The same holds for a prefix intent, with the key the object was found at.
//
// Pure functions; any thread. The caller reads `others` from the ledger.
#ifndef UPLOADBROKER_COMPLETION_AUTHORIZATION_H_
#define UPLOADBROKER_COMPLETION_AUTHORIZATION_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::completion {

// How far OSS's Last-Modified may trail the broker's clock.
inline constexpr absl::Duration kClockSkew = absl::Seconds(5);

// PermissionDenied naming the upload when another upload in `others` (any
// upload but `intent` itself; the list may hold unrelated ones) completed
// with `key` and accounts for the object with ETag `etag` (quotes and case
// ignored; empty: unknown) written at `last_modified` (the second point
// above).
absl::Status CheckNotClaimedByOther(const v1::Upload& intent, const std::string& key,
                                    absl::string_view etag, absl::Time last_modified,
                                    absl::Span<const v1::Upload> others,
                                    absl::Duration skew = kClockSkew);

// The whole rule above for the object at `key` with ETag `etag`, last
// written at `last_modified`. `others` must hold at least every upload of the intent's
// bucket whose key (exact, not prefix) is `key`, and every one whose
// completion names `key` that the caller can find. OK, or PermissionDenied
// saying which part failed (the object is not this authorization's upload).
absl::Status CheckWrittenUnder(const v1::Upload& intent, const std::string& key,
                               absl::string_view etag, absl::Time last_modified,
                               absl::Span<const v1::Upload> others,
                               absl::Duration skew = kClockSkew);

}  // namespace uploadbroker::completion

#endif  // UPLOADBROKER_COMPLETION_AUTHORIZATION_H_
