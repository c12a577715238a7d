#include "metrics/registry.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace uploadbroker::metrics {
namespace {

TEST(RegistryTest, RendersCounterWithLabels) {
  Registry registry;
  Counter& counter = registry.AddCounter(
      "ub_callbacks_total", "Callbacks received.", {"bucket", "outcome"});
  counter.Inc({"photos", "ok"});
  counter.Inc({"photos", "ok"}, 2);
  counter.Inc({"docs", "bad_signature"});

  EXPECT_EQ(registry.Render(),
            "# HELP ub_callbacks_total Callbacks received.\n"
            "# TYPE ub_callbacks_total counter\n"
            "ub_callbacks_total{bucket=\"docs\",outcome=\"bad_signature\"} 1\n"
            "ub_callbacks_total{bucket=\"photos\",outcome=\"ok\"} 3\n");
  EXPECT_EQ(counter.Value({"photos", "ok"}), 3u);
  EXPECT_EQ(counter.Value({"photos", "never"}), 0u);
}

TEST(RegistryTest, LabelLessMetricsScrapeAsZeroBeforeUse) {
  Registry registry;
  registry.AddCounter("ub_restarts_total", "Restarts.");
  registry.AddGauge("ub_ready", "1 when ready.");

  EXPECT_EQ(registry.Render(),
            "# HELP ub_restarts_total Restarts.\n"
            "# TYPE ub_restarts_total counter\n"
            "ub_restarts_total 0\n"
            "# HELP ub_ready 1 when ready.\n"
            "# TYPE ub_ready gauge\n"
            "ub_ready 0\n");
}

TEST(RegistryTest, RendersHistogramCumulativeWithInf) {
  Registry registry;
  Histogram& histogram = registry.AddHistogram("ub_rpc_seconds", "RPC latency.",
                                               {"method"}, {0.005, 0.125, 1});
  histogram.Observe({"Issue"}, 0.001);
  histogram.Observe({"Issue"}, 0.125);  // on the bound: counts in le="0.125"
  histogram.Observe({"Issue"}, 0.25);
  histogram.Observe({"Issue"}, 7);

  EXPECT_EQ(registry.Render(),
            "# HELP ub_rpc_seconds RPC latency.\n"
            "# TYPE ub_rpc_seconds histogram\n"
            "ub_rpc_seconds_bucket{method=\"Issue\",le=\"0.005\"} 1\n"
            "ub_rpc_seconds_bucket{method=\"Issue\",le=\"0.125\"} 2\n"
            "ub_rpc_seconds_bucket{method=\"Issue\",le=\"1\"} 3\n"
            "ub_rpc_seconds_bucket{method=\"Issue\",le=\"+Inf\"} 4\n"
            "ub_rpc_seconds_sum{method=\"Issue\"} 7.376\n"
            "ub_rpc_seconds_count{method=\"Issue\"} 4\n");
}

TEST(RegistryTest, RendersLabelLessHistogram) {
  Registry registry;
  registry.AddHistogram("ub_wait_seconds", "Wait.", {}, {0.5})
      .Observe({}, 0.25);

  EXPECT_EQ(registry.Render(),
            "# HELP ub_wait_seconds Wait.\n"
            "# TYPE ub_wait_seconds histogram\n"
            "ub_wait_seconds_bucket{le=\"0.5\"} 1\n"
            "ub_wait_seconds_bucket{le=\"+Inf\"} 1\n"
            "ub_wait_seconds_sum 0.25\n"
            "ub_wait_seconds_count 1\n");
}

TEST(RegistryTest, EscapesLabelValuesAndHelp) {
  Registry registry;
  registry
      .AddCounter("ub_odd_total", "Help with \\ and\nnewline \"kept\".", {"v"})
      .Inc({"a\\b\"c\nd"});

  EXPECT_EQ(registry.Render(),
            "# HELP ub_odd_total Help with \\\\ and\\nnewline \"kept\".\n"
            "# TYPE ub_odd_total counter\n"
            "ub_odd_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(RegistryTest, GaugeSetAddAndCallbackGauge) {
  Registry registry;
  Gauge& gauge = registry.AddGauge("ub_inflight", "In flight.", {"kind"});
  gauge.Set({"upload"}, 5);
  gauge.Add({"upload"}, -1.5);
  int scrapes = 0;
  registry.AddGaugeFn("ub_streams", "Open streams.", {"caller"}, [&] {
    ++scrapes;
    return std::vector<std::pair<LabelValues, double>>{{{"alice"}, 2},
                                                       {{"bob"}, 0.5}};
  });

  const std::string expected =
      "# HELP ub_inflight In flight.\n"
      "# TYPE ub_inflight gauge\n"
      "ub_inflight{kind=\"upload\"} 3.5\n"
      "# HELP ub_streams Open streams.\n"
      "# TYPE ub_streams gauge\n"
      "ub_streams{caller=\"alice\"} 2\n"
      "ub_streams{caller=\"bob\"} 0.5\n";
  EXPECT_EQ(registry.Render(), expected);
  EXPECT_EQ(registry.Render(), expected);
  EXPECT_EQ(scrapes, 2);
  EXPECT_DOUBLE_EQ(gauge.Value({"upload"}), 3.5);
}

TEST(RegistryTest, ConcurrentIncrementsSumCorrectly) {
  Registry registry;
  Counter& counter = registry.AddCounter("ub_hits_total", "Hits.", {"shard"});
  Histogram& histogram =
      registry.AddHistogram("ub_hit_seconds", "Hit time.", {}, {0.5});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counter.Inc({"all"});
        counter.Inc({i % 2 == 0 ? "even" : "odd"});
        histogram.Observe({}, t % 2 == 0 ? 0.25 : 1.0);
        if (i % 1000 == 0) registry.Render();  // scrapes race with writes
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(counter.Value({"all"}), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(counter.Value({"even"}), uint64_t{kThreads * kPerThread / 2});
  EXPECT_EQ(counter.Value({"odd"}), uint64_t{kThreads * kPerThread / 2});
  const std::string text = registry.Render();
  EXPECT_NE(text.find("ub_hit_seconds_bucket{le=\"0.5\"} 80000\n"),
            std::string::npos);
  EXPECT_NE(text.find("ub_hit_seconds_count 160000\n"), std::string::npos);
  EXPECT_NE(text.find("ub_hit_seconds_sum 100000\n"), std::string::npos);
}

TEST(RegistryDeathTest, DuplicateNameAborts) {
  Registry registry;
  registry.AddCounter("ub_x_total", "x");
  EXPECT_DEATH(registry.AddGauge("ub_x_total", "x"), "check failed");
}

TEST(RegistryDeathTest, WrongLabelCountAborts) {
  Registry registry;
  Counter& counter = registry.AddCounter("ub_y_total", "y", {"a", "b"});
  EXPECT_DEATH(counter.Inc({"only-one"}), "check failed");
}

}  // namespace
}  // namespace uploadbroker::metrics
