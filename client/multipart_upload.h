// `ubctl upload --multipart`: a large file through the broker's presigned
// multipart upload. Parts go out `parallel` at a time from the file (read
// with pread, never whole into memory), each retried with a freshly signed
// URL; then the presigned CompleteMultipartUpload makes OSS call the broker
// back, and what OSS relays is printed as for any upload.
//
// Resume: the upload id, the file's size and modification time, and the MD5
// of every part as OSS accepted it are kept in a state file (FILE.ubupload,
// or see ResumeStatePath) until the upload finishes. Run the same upload
// again after an interruption and:
//  - if the file's size or modification time changed (or the bucket/key),
//    the old upload is aborted (its parts deleted from OSS), saying so, and
//    a new one starts;
//  - else a part OSS holds is skipped only when the MD5 of the same range of
//    the file equals its ETag (ListUploadedParts); any other part is sent
//    again.
// Before completing it checks that the file did not change while being read
// and that every part in OSS carries the MD5 read from the file, so the
// object it completes is byte for byte the file (a mismatch: exit 1, no
// completion). The intent's TTL (args.ttl_seconds) bounds the whole upload,
// resumes included. Blocking; call from one thread (it starts its own
// workers and joins them).
#ifndef UPLOADBROKER_CLIENT_MULTIPART_UPLOAD_H_
#define UPLOADBROKER_CLIENT_MULTIPART_UPLOAD_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "client/broker_client.h"
#include "client/upload.h"

namespace uploadbroker::client {

// Uploads `args.file` (`size` bytes) to `key`. Exit codes as Upload().
int UploadMultipart(BrokerClient& broker, const UploadArgs& args, int64_t size,
                    const std::string& key, std::ostream& out, std::ostream& err);

// Where the resume state for `file` is kept: `state_file` if given (""
// when it cannot be written), else FILE.ubupload when FILE's directory is
// writable, else under $XDG_STATE_HOME/ubctl/ (~/.local/state/ubctl/); ""
// when nowhere is writable (the upload then refuses to start).
std::string ResumeStatePath(const std::string& file, const std::string& state_file = "");

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_MULTIPART_UPLOAD_H_
