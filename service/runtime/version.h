// The project's version, as CMake's project(VERSION ...) declares it.
// Thread-safe (a constant).
#ifndef UPLOADBROKER_RUNTIME_VERSION_H_
#define UPLOADBROKER_RUNTIME_VERSION_H_

#include "absl/strings/string_view.h"

namespace uploadbroker::runtime {

// "MAJOR.MINOR.PATCH", e.g. "0.1.0".
absl::string_view Version();

}  // namespace uploadbroker::runtime

#endif  // UPLOADBROKER_RUNTIME_VERSION_H_
