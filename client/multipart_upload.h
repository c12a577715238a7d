// `ubctl upload --multipart`: a large file through the broker's presigned
// multipart upload. Parts go out `parallel` at a time from the file (read
// with pread, never whole into memory), each retried with a freshly signed
// URL; then the presigned CompleteMultipartUpload makes OSS call the broker
// back, and what OSS relays is printed as for any upload.
//
// Resume: the upload id is kept in FILE.ubupload until the upload finishes.
// Run the same command again after an interruption and only the parts OSS
// does not hold (ListUploadedParts) are sent. Blocking; call from one thread
// (it starts its own workers and joins them).
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

// Where the resumable upload's id is kept for `file`.
std::string ResumeStatePath(const std::string& file);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_MULTIPART_UPLOAD_H_
