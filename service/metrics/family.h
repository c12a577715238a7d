// Internal building blocks of metrics::Registry: a metric family (name,
// help, type, label names, text rendering) and its label-values -> cell map.
// Thread-safe; see registry.h for the contract users see. Defined in
// registry.cc, next to the text-format helpers they share.
#ifndef UPLOADBROKER_METRICS_FAMILY_H_
#define UPLOADBROKER_METRICS_FAMILY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace uploadbroker::metrics {

// Values in the order of the label names the metric was declared with.
using LabelValues = std::vector<std::string>;

namespace internal {

// One metric family: name, help, type and its series.
class Family {
 public:
  Family(std::string name, std::string help, std::string type,
         std::vector<std::string> label_names);
  virtual ~Family() = default;
  const std::string& name() const { return name_; }
  // Appends HELP, TYPE and every series line to `out`.
  void Render(std::string& out) const;

 protected:
  virtual void RenderSeries(std::string& out) const = 0;
  // `name_<suffix>{labels[,extra]} value\n`.
  void AppendSample(std::string& out, const char* suffix,
                    const LabelValues& values, const std::string& extra,
                    const std::string& value) const;
  size_t arity() const { return label_names_.size(); }

 private:
  const std::string name_, help_, type_;
  const std::vector<std::string> label_names_;
};

// Label values -> cell, created on first use, never removed.
template <typename Cell>
class SeriesMap {
 public:
  template <typename Make>
  Cell& Get(const LabelValues& values, Make make) {
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = cells_.find(values);
      if (it != cells_.end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    auto& cell = cells_[values];
    if (cell == nullptr) cell = make();
    return *cell;
  }
  template <typename Fn>
  void ForEach(Fn fn) const {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [values, cell] : cells_) fn(values, *cell);
  }

 private:
  mutable absl::Mutex mu_;
  std::map<LabelValues, std::unique_ptr<Cell>> cells_ ABSL_GUARDED_BY(mu_);
};

}  // namespace internal

}  // namespace uploadbroker::metrics

#endif  // UPLOADBROKER_METRICS_FAMILY_H_
