#include "common/log_safe.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/utf8.h"

namespace uploadbroker::common {
namespace {

// Code points that are valid UTF-8 but must not reach a log line raw.
bool Hazardous(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

}  // namespace

std::string LogSafe(absl::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 8);
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t next = i;
    uint32_t cp = 0;
    const bool valid = NextCodePoint(text, &next, &cp);
    if (!valid) next = i + 1;
    if (next > max_bytes) break;  // keep whole characters only
    if (!valid) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (cp < 0x20 || cp == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else if (Hazardous(cp)) {
      absl::StrAppendFormat(&out, "\\u%04x", cp);
    } else {
      out.append(text.data() + i, next - i);
    }
    i = next;
  }
  if (i < text.size()) absl::StrAppend(&out, "...[", text.size() - i, " more bytes]");
  return out;
}

std::string LogSafeStatus(const absl::Status& status) {
  return LogSafe(status.ToString(), kLogSafeMessageBytes);
}

LogRateLimiter::LogRateLimiter(int per_second, const Clock* clock)
    : per_second_(per_second), clock_(clock != nullptr ? clock : &real_clock_) {}

bool LogRateLimiter::Admit(uint64_t* suppressed) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (now - window_start_ >= absl::Seconds(1)) {
    window_start_ = now;
    admitted_in_window_ = 0;
  }
  if (admitted_in_window_ >= per_second_) {
    ++suppressed_;
    return false;
  }
  ++admitted_in_window_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace uploadbroker::common
