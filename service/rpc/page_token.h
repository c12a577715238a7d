// ListUploads page tokens: the position of the next page, as the id of the
// last upload the caller was shown (so a token tells the caller nothing it
// has not seen: no global sequence number, nothing about other callers'
// volume). Valid on every broker sharing the ledger, across restarts; no
// secret involved. The service checks that the upload a token names is one
// the caller may read (else the token is refused like a garbled one), so a
// forged token is not an existence oracle. Pure functions, any thread.
#ifndef UPLOADBROKER_RPC_PAGE_TOKEN_H_
#define UPLOADBROKER_RPC_PAGE_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace uploadbroker::rpc {

// The longest upload id a token carries (ids the broker issues are 35 bytes).
inline constexpr size_t kMaxTokenUploadIdBytes = 128;

// The token continuing after the upload `last_upload_id`.
std::string EncodePageToken(absl::string_view last_upload_id);

// The upload id a token continues after. InvalidArgument "page_token: ..."
// for anything EncodePageToken did not make (wrong version, bad base64, an
// id too long or with characters an upload id never has).
absl::StatusOr<std::string> DecodePageToken(absl::string_view token);

// The error for a token whose upload the caller may not read, or that no
// longer exists: the same words for both.
absl::Status StalePageToken();

}  // namespace uploadbroker::rpc

#endif  // UPLOADBROKER_RPC_PAGE_TOKEN_H_
