#include "policy/time_format.h"

#include <cstdint>

namespace uploadbroker::policy {
namespace {

// Writes the UTC calendar fields of `t` into the pattern's digit runs: each
// run of 'Y', 'M', 'D', 'h', 'm', 's' or 'f' (milliseconds) becomes that
// field, zero-padded to the run's length; other characters are copied.
// Every issued authorization formats three times, and cctz's general
// formatter costs more than the rest of the policy text, so the fixed
// layouts are written here; years outside 0-9999 (never issued) go to it.
std::string Format(absl::Time t, const char* pattern, const char* fallback) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond cs = absl::ToCivilSecond(t, utc);
  if (cs.year() < 0 || cs.year() > 9999) return absl::FormatTime(fallback, t, utc);
  const int64_t millis = absl::ToInt64Milliseconds(t - absl::FromCivil(cs, utc));
  std::string out(pattern);
  for (size_t end = out.size(); end > 0;) {
    const char field = out[end - 1];
    int64_t value;
    switch (field) {
      case 'Y': value = cs.year(); break;
      case 'M': value = cs.month(); break;
      case 'D': value = cs.day(); break;
      case 'h': value = cs.hour(); break;
      case 'm': value = cs.minute(); break;
      case 's': value = cs.second(); break;
      case 'f': value = millis; break;
      default: --end; continue;
    }
    for (; end > 0 && out[end - 1] == field; --end, value /= 10) {
      out[end - 1] = static_cast<char>('0' + value % 10);
    }
  }
  return out;
}

}  // namespace

std::string Iso8601Millis(absl::Time t) {
  return Format(t, "YYYY-MM-DDThh:mm:ss.fffZ", "%Y-%m-%dT%H:%M:%E3SZ");
}

std::string V4DateTime(absl::Time t) {
  return Format(t, "YYYYMMDDThhmmssZ", "%Y%m%dT%H%M%SZ");
}

std::string V4Date(absl::Time t) { return Format(t, "YYYYMMDD", "%Y%m%d"); }

}  // namespace uploadbroker::policy
