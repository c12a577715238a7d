// Registry: a small thread-safe Prometheus metrics registry.
//
// The project's own, although Debian 12 does package a Prometheus C++ client
// (prometheus-cpp-dev 1.0.1, which brings civetweb for an HTTP server the
// broker does not need: /metrics is served by the broker's own HTTP server).
// It covers what the broker exports —
// counters, gauges (set directly or computed at scrape) and histograms — and
// renders them in the text exposition format 0.0.4.
//
// Threads: every method here may be called from any thread. Metrics are owned
// by the Registry; the references Add* returns stay valid as long as it does.
// Hot path: one map lookup under a reader lock plus one atomic add; the first
// use of a label combination takes the writer lock once.
//
// Label values are printed verbatim on an unauthenticated scrape endpoint.
// Callers must never pass secrets (API keys, signatures, tokens) as label
// values, nor unbounded values such as object keys (series never expire).
//
// Misuse no input can cause — a duplicate or malformed name, a label count
// that differs from the declared names, unsorted buckets — aborts (UB_CHECK).
#ifndef UPLOADBROKER_METRICS_REGISTRY_H_
#define UPLOADBROKER_METRICS_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "metrics/family.h"

namespace uploadbroker::metrics {

class Counter : public internal::Family {
 public:
  Counter(std::string name, std::string help,
          std::vector<std::string> label_names);
  void Inc(const LabelValues& values, uint64_t n = 1);
  uint64_t Value(const LabelValues& values) const;  // 0 if never incremented

 private:
  struct Cell {
    std::atomic<uint64_t> value{0};
  };
  void RenderSeries(std::string& out) const override;
  mutable internal::SeriesMap<Cell> series_;
};

class Gauge : public internal::Family {
 public:
  Gauge(std::string name, std::string help,
        std::vector<std::string> label_names);
  void Set(const LabelValues& values, double v);
  void Add(const LabelValues& values, double delta);
  double Value(const LabelValues& values) const;

 private:
  struct Cell {
    std::atomic<double> value{0};
  };
  void RenderSeries(std::string& out) const override;
  mutable internal::SeriesMap<Cell> series_;
};

class Histogram : public internal::Family {
 public:
  // `bounds`: finite, strictly increasing upper bounds ("le"); +Inf is added.
  Histogram(std::string name, std::string help,
            std::vector<std::string> label_names, std::vector<double> bounds);
  void Observe(const LabelValues& values, double seconds);

 private:
  struct Cell {
    explicit Cell(size_t n) : buckets(n) {}
    std::vector<std::atomic<uint64_t>> buckets;  // per bound, last is +Inf
    std::atomic<double> sum{0};
  };
  void RenderSeries(std::string& out) const override;
  const std::vector<double> bounds_;
  mutable internal::SeriesMap<Cell> series_;
};

class Registry {
 public:
  // Evaluated at every scrape, on the scraping thread, with no lock held.
  using GaugeFn = std::function<std::vector<std::pair<LabelValues, double>>()>;
  static constexpr char kContentType[] =
      "text/plain; version=0.0.4; charset=utf-8";

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& AddCounter(std::string name, std::string help,
                      std::vector<std::string> label_names = {});
  Gauge& AddGauge(std::string name, std::string help,
                  std::vector<std::string> label_names = {});
  void AddGaugeFn(std::string name, std::string help,
                  std::vector<std::string> label_names, GaugeFn fn);
  Histogram& AddHistogram(std::string name, std::string help,
                          std::vector<std::string> label_names,
                          std::vector<double> buckets_seconds);

  // All families in registration order, text format 0.0.4.
  std::string Render() const;

 private:
  template <typename T>
  T& Add(std::unique_ptr<T> family);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<internal::Family>> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uploadbroker::metrics

#endif  // UPLOADBROKER_METRICS_REGISTRY_H_
