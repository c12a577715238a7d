// `ubctl multipart list` and `ubctl multipart abort`: inspect and end
// interrupted multipart uploads without grpcurl or deleting state files by
// hand. Blocking; call from one thread.
#ifndef UPLOADBROKER_CLIENT_MULTIPART_ADMIN_H_
#define UPLOADBROKER_CLIENT_MULTIPART_ADMIN_H_

#include <ostream>
#include <string>

#include "client/broker_client.h"

namespace uploadbroker::client {

// With `file` empty: every PENDING multipart upload in the caller's scope
// (narrowed to `bucket` / `key_prefix` when given), each with what OSS holds
// of it (ListUploadedParts), as JSON {"uploads":[...]} on `out`. With
// `file`: the upload its resume state names (`state_file`, or where
// ResumeStatePath looks), whether the file changed since, and each part OSS
// holds. 0 on success; 1 when the broker refuses or `file` has no recorded
// upload; 2 for bad arguments.
int ListMultipart(BrokerClient& broker, const std::string& bucket, const std::string& key_prefix,
                  const std::string& file, const std::string& state_file, std::ostream& out,
                  std::ostream& err);

// Aborts `what`: an upload id, or a FILE (or its state file) whose recorded
// upload is aborted and whose state file is then removed. OSS deletes the
// parts; the intent becomes EXPIRED (EXPIRY_REASON_ABORTED). An upload that
// had already ended is reported, not an error, for a FILE (its state file is
// removed); for an id it is an error. Exit codes as ListMultipart.
int AbortMultipart(BrokerClient& broker, const std::string& what, const std::string& state_file,
                   std::ostream& out, std::ostream& err);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_MULTIPART_ADMIN_H_
