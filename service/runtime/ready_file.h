// The ready file: how a server started on port 0 tells scripts and tests
// which ports it got. Written once serving, as one JSON object and a newline,
// e.g. {"grpc_port":50051,"http_port":8080}.
#ifndef UPLOADBROKER_RUNTIME_READY_FILE_H_
#define UPLOADBROKER_RUNTIME_READY_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace uploadbroker::runtime {

// Writes `ports` to `path` atomically (`path`.tmp, then rename): a reader sees
// no file or the whole of it. Any thread. Unavailable, naming the path, when
// the file cannot be written.
absl::Status WriteReadyFile(const std::string& path,
                            const nlohmann::json& ports);

}  // namespace uploadbroker::runtime

#endif  // UPLOADBROKER_RUNTIME_READY_FILE_H_
