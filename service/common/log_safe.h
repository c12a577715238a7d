// Making untrusted text safe to put in a log line, and keeping log volume
// bounded when a client can trigger a line at will.
//
// LogSafe is the one way to log text a client chose (object keys, content
// types, ids and fields from callbacks or RPCs, peer strings): the result is
// printable ASCII plus well-formed, harmless UTF-8, so it can neither end a
// line, forge a second one, reorder text on a terminal (bidi controls) nor
// break a log parser. Pure function, thread-safe.
//
// LogRateLimiter lets at most `per_second` lines through in each second and
// counts the rest, so the next admitted line can say how many it stood for.
// Thread-safe.
#ifndef UPLOADBROKER_COMMON_LOG_SAFE_H_
#define UPLOADBROKER_COMMON_LOG_SAFE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace uploadbroker::common {

// Default cap on the bytes of `text` LogSafe shows.
inline constexpr size_t kLogSafeMaxBytes = 256;
// For error messages that quote such text (a Status message).
inline constexpr size_t kLogSafeMessageBytes = 1024;

// Escapes `text`:
//   backslash and double quote     \\ and \"
//   ASCII controls (newline, CR, tab, ESC, DEL, ...)   \xNN
//   bytes that are not well-formed UTF-8               \xNN
//   C1 controls, bidi controls (U+061C, U+200E/F, U+202A-E, U+2066-9), line
//   and paragraph separators (U+2028/9), BOM/zero-width no-break (U+FEFF)
//                                                      \uNNNN
// Other UTF-8 is kept. Past `max_bytes` bytes of input (cut on a character
// boundary) the rest is replaced by "...[N more bytes]".
std::string LogSafe(absl::string_view text, size_t max_bytes = kLogSafeMaxBytes);

// LogSafe(status.ToString(), kLogSafeMessageBytes): statuses quote input.
std::string LogSafeStatus(const absl::Status& status);

class LogRateLimiter {
 public:
  // `clock` null: the real clock; not owned, must outlive the limiter.
  explicit LogRateLimiter(int per_second, const Clock* clock = nullptr);

  // True when a line may be written now; then *suppressed is the number of
  // lines refused since the previous admitted one (to mention in it).
  bool Admit(uint64_t* suppressed);

 private:
  const int per_second_;
  RealClock real_clock_;
  const Clock* const clock_;
  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int admitted_in_window_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace uploadbroker::common

#endif  // UPLOADBROKER_COMMON_LOG_SAFE_H_
