// What `ubctl upload --multipart` may skip when it resumes: only parts whose
// bytes in OSS are provably the local file's. OSS's part ETag is the quoted
// uppercase hex MD5 of the part, so a held part is skipped only when the MD5
// of the same range of the local file equals it (or, for an ETag that is not
// an MD5, equals the MD5 the state journal recorded when it was sent).
// Internal to client/; pure functions over an open file, thread-compatible.
#ifndef UPLOADBROKER_CLIENT_MULTIPART_RESUME_H_
#define UPLOADBROKER_CLIENT_MULTIPART_RESUME_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "client/broker_client.h"
#include "client/resume_state.h"

namespace uploadbroker::client::internal {

// Bytes in part `n` (1-based) of `plan`.
int64_t PartBytes(const v1::MultipartPlan& plan, int n);

// Reads part `n` of `plan` from `fd` into `buffer`; false on a short read.
bool ReadPart(int fd, const v1::MultipartPlan& plan, int n, std::string& buffer);

struct HeldParts {
  std::map<int, std::string> same;  // part number -> MD5, proven equal to the file's
  int differ = 0;                   // held, but not (provably) the file's bytes
  bool read_error = false;          // the file could not be read (shorter now?)
};

// Compares every part in `listed` with the file open as `fd`.
HeldParts CheckHeldParts(int fd, const v1::ListUploadedPartsResponse& listed,
                         const std::map<int, std::string>& sent_md5);

// "" when OSS holds every part of `listed.plan()` at its planned size with
// the MD5 in `md5s` (an ETag that is no MD5 is taken on size); else which
// part is wrong, in words.
std::string CheckAllHeld(const v1::ListUploadedPartsResponse& listed,
                         const std::map<int, std::string>& md5s);

// Why `saved` cannot be resumed for the upload described by `now` (same
// bucket, key and file identity required); "" when it can.
std::string WhyNotResumable(const ResumeState& saved, const ResumeState& now,
                            const std::string& file);

// Aborts the abandoned `upload_id` so its parts are not left stored until it
// expires, and says on `err` what happened. Nothing is done (or said) when
// it is no longer open in OSS (ListUploadedParts: NOT_FOUND or
// FAILED_PRECONDITION): completed there, it is the reconciler's to record.
void AbortAbandoned(BrokerClient& broker, const std::string& upload_id, std::ostream& err);

}  // namespace uploadbroker::client::internal

#endif  // UPLOADBROKER_CLIENT_MULTIPART_RESUME_H_
