#include "metrics/registry.h"

#include <cmath>
#include <cstdlib>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/check.h"

namespace uploadbroker::metrics {
namespace {

bool IsNameChar(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
    return true;
  }
  if (allow_colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool IsValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

// Shortest text that reads back as the same double; Prometheus spellings
// for the non-finite values.
std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrFormat("%.0f", v);
  }
  for (int precision = 1; precision < 17; ++precision) {
    std::string text = absl::StrFormat("%.*g", precision, v);
    if (std::strtod(text.c_str(), nullptr) == v) return text;
  }
  return absl::StrFormat("%.17g", v);
}

// HELP text escapes backslash and newline; label values also escape '"'.
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

void AtomicAdd(std::atomic<double>& target, double delta) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta,
                                       std::memory_order_relaxed)) {
  }
}

// A gauge whose series are computed by a callback at every scrape.
class GaugeFnFamily : public internal::Family {
 public:
  GaugeFnFamily(std::string name, std::string help,
                std::vector<std::string> label_names, Registry::GaugeFn fn)
      : Family(std::move(name), std::move(help), "gauge",
               std::move(label_names)),
        fn_(std::move(fn)) {}

 private:
  void RenderSeries(std::string& out) const override {
    for (const auto& [values, value] : fn_()) {
      AppendSample(out, "", values, "", FormatDouble(value));
    }
  }
  const Registry::GaugeFn fn_;
};

}  // namespace

namespace internal {

Family::Family(std::string name, std::string help, std::string type,
               std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(std::move(type)),
      label_names_(std::move(label_names)) {
  UB_CHECK(IsValidName(name_, /*allow_colon=*/true));
  std::set<std::string> seen;
  for (const std::string& label : label_names_) {
    UB_CHECK(IsValidName(label, /*allow_colon=*/false));
    UB_CHECK(label.rfind("__", 0) != 0);  // reserved for Prometheus
    UB_CHECK(seen.insert(label).second);
  }
}

void Family::Render(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ", Escape(help_, false), "\n");
  absl::StrAppend(&out, "# TYPE ", name_, " ", type_, "\n");
  RenderSeries(out);
}

void Family::AppendSample(std::string& out, const char* suffix,
                          const LabelValues& values, const std::string& extra,
                          const std::string& value) const {
  UB_CHECK(values.size() == label_names_.size());
  absl::StrAppend(&out, name_, suffix);
  if (!values.empty() || !extra.empty()) {
    out += '{';
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      absl::StrAppend(&out, label_names_[i], "=\"", Escape(values[i], true),
                      "\"");
    }
    if (!extra.empty()) absl::StrAppend(&out, values.empty() ? "" : ",", extra);
    out += '}';
  }
  absl::StrAppend(&out, " ", value, "\n");
}

}  // namespace internal

Counter::Counter(std::string name, std::string help,
                 std::vector<std::string> label_names)
    : Family(std::move(name), std::move(help), "counter",
             std::move(label_names)) {
  if (arity() == 0) Inc({}, 0);  // a label-less counter scrapes as 0
}

void Counter::Inc(const LabelValues& values, uint64_t n) {
  UB_CHECK(values.size() == arity());
  series_.Get(values, [] { return std::make_unique<Cell>(); })
      .value.fetch_add(n, std::memory_order_relaxed);
}

uint64_t Counter::Value(const LabelValues& values) const {
  uint64_t result = 0;
  series_.ForEach([&](const LabelValues& v, const Cell& cell) {
    if (v == values) result = cell.value.load(std::memory_order_relaxed);
  });
  return result;
}

void Counter::RenderSeries(std::string& out) const {
  series_.ForEach([&](const LabelValues& values, const Cell& cell) {
    AppendSample(out, "", values, "",
                 absl::StrCat(cell.value.load(std::memory_order_relaxed)));
  });
}

Gauge::Gauge(std::string name, std::string help,
             std::vector<std::string> label_names)
    : Family(std::move(name), std::move(help), "gauge",
             std::move(label_names)) {
  if (arity() == 0) Add({}, 0);
}

void Gauge::Set(const LabelValues& values, double v) {
  UB_CHECK(values.size() == arity());
  series_.Get(values, [] { return std::make_unique<Cell>(); })
      .value.store(v, std::memory_order_relaxed);
}

void Gauge::Add(const LabelValues& values, double delta) {
  UB_CHECK(values.size() == arity());
  AtomicAdd(series_.Get(values, [] { return std::make_unique<Cell>(); }).value,
            delta);
}

double Gauge::Value(const LabelValues& values) const {
  double result = 0;
  series_.ForEach([&](const LabelValues& v, const Cell& cell) {
    if (v == values) result = cell.value.load(std::memory_order_relaxed);
  });
  return result;
}

void Gauge::RenderSeries(std::string& out) const {
  series_.ForEach([&](const LabelValues& values, const Cell& cell) {
    AppendSample(out, "", values, "",
                 FormatDouble(cell.value.load(std::memory_order_relaxed)));
  });
}

Histogram::Histogram(std::string name, std::string help,
                     std::vector<std::string> label_names,
                     std::vector<double> bounds)
    : Family(std::move(name), std::move(help), "histogram",
             std::move(label_names)),
      bounds_(std::move(bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    UB_CHECK(std::isfinite(bounds_[i]));
    UB_CHECK(i == 0 || bounds_[i - 1] < bounds_[i]);
  }
  if (arity() == 0) {
    series_.Get({},
                [this] { return std::make_unique<Cell>(bounds_.size() + 1); });
  }
}

void Histogram::Observe(const LabelValues& values, double seconds) {
  UB_CHECK(values.size() == arity());
  Cell& cell = series_.Get(
      values, [this] { return std::make_unique<Cell>(bounds_.size() + 1); });
  size_t bucket = 0;
  while (bucket < bounds_.size() && seconds > bounds_[bucket]) ++bucket;
  cell.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(cell.sum, seconds);
}

void Histogram::RenderSeries(std::string& out) const {
  series_.ForEach([&](const LabelValues& values, const Cell& cell) {
    // _count is the +Inf bucket, so the two always agree within a scrape.
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += cell.buckets[i].load(std::memory_order_relaxed);
      std::string le =
          i < bounds_.size() ? FormatDouble(bounds_[i]) : std::string("+Inf");
      AppendSample(out, "_bucket", values, absl::StrCat("le=\"", le, "\""),
                   absl::StrCat(cumulative));
    }
    AppendSample(out, "_sum", values, "",
                 FormatDouble(cell.sum.load(std::memory_order_relaxed)));
    AppendSample(out, "_count", values, "", absl::StrCat(cumulative));
  });
}

Registry::Registry() = default;
Registry::~Registry() = default;

template <typename T>
T& Registry::Add(std::unique_ptr<T> family) {
  T& result = *family;
  absl::MutexLock lock(&mu_);
  for (const auto& existing : families_) {
    UB_CHECK(existing->name() != result.name());
  }
  families_.push_back(std::move(family));
  return result;
}

Counter& Registry::AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names) {
  return Add(std::make_unique<Counter>(std::move(name), std::move(help),
                                       std::move(label_names)));
}

Gauge& Registry::AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names) {
  return Add(std::make_unique<Gauge>(std::move(name), std::move(help),
                                     std::move(label_names)));
}

void Registry::AddGaugeFn(std::string name, std::string help,
                          std::vector<std::string> label_names, GaugeFn fn) {
  UB_CHECK(fn != nullptr);
  Add(std::make_unique<GaugeFnFamily>(std::move(name), std::move(help),
                                      std::move(label_names), std::move(fn)));
}

Histogram& Registry::AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> buckets_seconds) {
  for (const std::string& label : label_names) UB_CHECK(label != "le");
  return Add(std::make_unique<Histogram>(std::move(name), std::move(help),
                                         std::move(label_names),
                                         std::move(buckets_seconds)));
}

std::string Registry::Render() const {
  // Families are never removed, so the pointers outlive the lock; rendering
  // (and GaugeFn callbacks) run without it.
  std::vector<const internal::Family*> families;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& family : families_) families.push_back(family.get());
  }
  std::string out;
  for (const internal::Family* family : families) family->Render(out);
  return out;
}

}  // namespace uploadbroker::metrics
