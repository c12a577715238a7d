#include "completion/authorization.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace uploadbroker::completion {
namespace {

// Two ETags name different objects only when both are known and differ
// (quotes and case aside).
bool MaybeSameObject(absl::string_view a, absl::string_view b) {
  a = absl::StripPrefix(absl::StripSuffix(a, "\""), "\"");
  b = absl::StripPrefix(absl::StripSuffix(b, "\""), "\"");
  return a.empty() || b.empty() || absl::EqualsIgnoreCase(a, b);
}

absl::Time Created(const v1::Upload& u) {
  return absl::FromUnixSeconds(u.created_at().seconds()) + absl::Nanoseconds(u.created_at().nanos());
}

}  // namespace

absl::Status CheckNotClaimedByOther(const v1::Upload& intent, const std::string& key,
                                    absl::string_view etag, absl::Time last_modified,
                                    absl::Span<const v1::Upload> others, absl::Duration skew) {
  for (const v1::Upload& other : others) {
    if (other.upload_id() == intent.upload_id() || other.bucket() != intent.bucket()) continue;
    if (other.state() != v1::UPLOAD_STATE_COMPLETED || other.completion().key() != key) continue;
    if (!MaybeSameObject(other.completion().etag(), etag)) continue;
    const google::protobuf::Timestamp& at = other.completion().completed_at();
    const bool timed = at.seconds() != 0 || at.nanos() != 0;
    const absl::Time recorded = absl::FromUnixSeconds(at.seconds()) + absl::Nanoseconds(at.nanos());
    if (!timed || recorded + skew >= last_modified) {
      return absl::PermissionDeniedError(absl::StrCat(
          "object: upload ", other.upload_id(), " completed with this key, recorded ",
          timed ? absl::FormatTime(recorded, absl::UTCTimeZone()) : "at an unknown time",
          ", after the object was written"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckWrittenUnder(const v1::Upload& intent, const std::string& key,
                               absl::string_view etag, absl::Time last_modified,
                               absl::Span<const v1::Upload> others, absl::Duration skew) {
  // Last-Modified has whole seconds, so the creation time is taken whole too.
  const absl::Time created = absl::FromUnixSeconds(intent.created_at().seconds());
  if (last_modified == absl::InfinitePast()) {
    return absl::PermissionDeniedError("object: OSS did not say when it was written");
  }
  if (last_modified < created - skew) {
    return absl::PermissionDeniedError(absl::StrCat(
        "object: last written ", absl::FormatTime(last_modified, absl::UTCTimeZone()),
        ", before the authorization (", absl::FormatTime(created, absl::UTCTimeZone()), ")"));
  }
  if (absl::Status claimed = CheckNotClaimedByOther(intent, key, etag, last_modified, others, skew);
      !claimed.ok()) {
    return claimed;
  }
  // Issue order: creation time, then upload_id for a tie.
  const auto mine = std::make_pair(Created(intent), intent.upload_id());
  for (const v1::Upload& other : others) {
    if (other.bucket() != intent.bucket() || other.key() != key || other.key_is_prefix()) continue;
    if (std::make_pair(Created(other), other.upload_id()) <= mine) continue;
    if (Created(other) <= last_modified + skew) {
      return absl::PermissionDeniedError(absl::StrCat(
          "object: a later authorization for the key (", other.upload_id(),
          ") was issued before it was written"));
    }
  }
  return absl::OkStatus();
}

}  // namespace uploadbroker::completion
