// Status propagation macros (Abseil 20220623 ships none).
#ifndef UPLOADBROKER_COMMON_STATUS_MACROS_H_
#define UPLOADBROKER_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"

// Returns the status from the enclosing function when `expr` is not OK.
#define UB_RETURN_IF_ERROR(expr)           \
  do {                                     \
    ::absl::Status ub_status_ = (expr);    \
    if (!ub_status_.ok()) return ub_status_; \
  } while (0)

#define UB_CONCAT_INNER_(a, b) a##b
#define UB_CONCAT_(a, b) UB_CONCAT_INNER_(a, b)

// `UB_ASSIGN_OR_RETURN(auto x, StatusOrExpr());` declares x from the value
// or returns the error.
#define UB_ASSIGN_OR_RETURN(lhs, expr) \
  UB_ASSIGN_OR_RETURN_IMPL_(UB_CONCAT_(ub_statusor_, __LINE__), lhs, expr)
#define UB_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // UPLOADBROKER_COMMON_STATUS_MACROS_H_
