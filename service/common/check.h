// UB_CHECK: aborts the process when a broken invariant is found.
//
// Rule (see README "Crash or handle"): untrusted input (RPC arguments,
// callbacks, config, disk contents) is answered with an absl::Status; only a
// programming error — something no input can cause — reaches UB_CHECK.
#ifndef UPLOADBROKER_COMMON_CHECK_H_
#define UPLOADBROKER_COMMON_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define UB_CHECK(cond)                                                   \
  do {                                                                   \
    if (!(cond)) {                                                       \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                               \
      std::abort();                                                      \
    }                                                                    \
  } while (0)

#endif  // UPLOADBROKER_COMMON_CHECK_H_
