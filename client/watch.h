// `ubctl watch`: follows Subscribe with the Subscriber and prints one JSON
// object per event (proto JSON on one line, field names as in the .proto,
// including the cursor). With a cursor file it writes the cursor after each
// printed event (temp file + rename, so the file is never torn) and resumes
// after the cursor in it when it exists. Exit 1 with "error: CODE: message"
// when the stream fails for good; 2 on usage errors.
#ifndef UPLOADBROKER_CLIENT_WATCH_H_
#define UPLOADBROKER_CLIENT_WATCH_H_

#include <grpcpp/security/credentials.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "uploadbroker/v1/upload_broker.pb.h"

namespace uploadbroker::client {

struct WatchArgs {
  std::string target;
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // client/channel.h; null: plaintext
  std::string api_key;
  std::vector<std::string> buckets;
  std::vector<std::string> key_prefixes;
  std::vector<std::string> metadata;  // k=v
  std::vector<std::string> callers;
  std::vector<std::string> types;  // completed, expired
  std::string start;               // latest (default) or earliest
  int64_t cursor = -1;             // >= 0: start after this cursor
  std::string cursor_file;         // resume point, read and written
  int max_receive_bytes = 0;       // Subscriber::Options::max_receive_message_bytes
};

// The request the flags describe (the cursor file not considered).
// InvalidArgument naming the flag.
absl::StatusOr<v1::SubscribeRequest> WatchRequest(const WatchArgs& args);

// The cursor stored in `path`; nullopt when the file does not exist.
absl::StatusOr<std::optional<uint64_t>> ReadCursorFile(const std::string& path);
absl::Status WriteCursorFile(const std::string& path, uint64_t cursor);

// Runs until the stream fails for good; returns the exit status.
int Watch(const WatchArgs& args, std::ostream& out, std::ostream& err);

}  // namespace uploadbroker::client

#endif  // UPLOADBROKER_CLIENT_WATCH_H_
