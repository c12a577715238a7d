#include "runtime/version.h"

namespace uploadbroker::runtime {

// UB_VERSION is set by service/runtime/CMakeLists.txt from PROJECT_VERSION.
absl::string_view Version() { return UB_VERSION; }

}  // namespace uploadbroker::runtime
