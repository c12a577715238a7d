// Time formats used by OSS signatures, always in UTC. Pure functions,
// thread-safe. Sub-second precision is truncated except in Iso8601Millis.
#ifndef UPLOADBROKER_POLICY_TIME_FORMAT_H_
#define UPLOADBROKER_POLICY_TIME_FORMAT_H_

#include <string>

#include "absl/time/time.h"

namespace uploadbroker::policy {

// POST policy "expiration": "2025-01-02T04:04:05.000Z".
std::string Iso8601Millis(absl::Time t);
// V4 x-oss-date: "20250102T030405Z".
std::string V4DateTime(absl::Time t);
// V4 scope date: "20250102".
std::string V4Date(absl::Time t);

}  // namespace uploadbroker::policy

#endif  // UPLOADBROKER_POLICY_TIME_FORMAT_H_
