// `ubctl upload`: the whole direct-upload flow from the uploader's side. Asks
// the broker for a POST policy (or a presigned PUT URL), sends the file to
// OSS with libcurl, and prints what OSS relayed (the broker's callback
// answer) as JSON. Failures are explained in plain words. Blocking; call from
// one thread.
#ifndef UPLOADBROKER_CLIENT_UPLOAD_H_
#define UPLOADBROKER_CLIENT_UPLOAD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <grpcpp/security/credentials.h>

#include "absl/time/time.h"
#include "common/backoff.h"

namespace uploadbroker::client {

struct UploadArgs {
  std::string target;   // broker gRPC address
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // client/channel.h; null: plaintext
  std::string api_key;
  std::string file;     // local path
  std::string bucket;
  std::string key;         // exact key, or
  std::string key_prefix;  // a prefix; the key becomes prefix + file name
  std::string content_type;  // default application/octet-stream
  std::vector<std::string> metadata;  // k=v
  // Validity of the authorization in seconds (0: the broker's default). For
  // a multipart upload it bounds the whole upload, resumes included: once it
  // has passed, no part can be signed and the upload must start over.
  int64_t ttl_seconds = 0;
  int64_t max_size = 0;  // POST: largest accepted size (0: broker default)
  bool presigned = false;  // PUT to a presigned URL instead of a POST form
  bool v1 = false;         // OSS signature V1 instead of V4
  bool allow_overwrite = false;  // may replace an existing object (default: refused)
  bool progress = false;   // draw a progress bar on `err`
  // Multipart upload (multipart_upload.h): forced with `multipart`, and
  // chosen automatically for files larger than `multipart_threshold` (0:
  // never automatically) or larger than 5 GiB (the most one PUT or POST
  // carries). Other uploads stream the file; none is read whole into memory.
  bool multipart = false;
  int64_t multipart_threshold = int64_t{64} << 20;
  int64_t part_size = 0;  // 0: the broker picks
  int parallel = 4;       // parts in flight at once
  int retries = 3;        // further attempts per part, each with a fresh URL
  // The wait before further attempt n (Delay(n - 1)): 0.4 s, 0.8 s, ... 6.4 s.
  common::Backoff part_retry_backoff = {absl::Milliseconds(400), 2.0, absl::Milliseconds(6400)};
  // Where the multipart resume state is kept ("": FILE.ubupload, or under
  // $XDG_STATE_HOME/ubctl/ when FILE's directory is not writable).
  std::string state_file;
  // Called (one call at a time) after OSS accepted each part, with its
  // number; returning false stops the upload there, as an interruption
  // would, leaving it to be resumed by running the same upload again.
  std::function<bool(int part_number)> on_part_done;
};

// 0 on success (the relayed JSON on `out`); 1 with an explanation on `err`
// when the broker or OSS refuses (or a multipart upload stopped early); 2 for
// bad arguments.
int Upload(const UploadArgs& args, std::ostream& out, std::ostream& err);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_UPLOAD_H_
