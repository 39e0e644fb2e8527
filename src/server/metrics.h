// Server metrics in the Prometheus text format (GET /metrics): request and token counters, the engine's
// gauges (queue depth, batch size, KV blocks), and histograms of time to first token and time per token.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace tern::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // Appends `name_bucket{le=...}`, `name_sum` and `name_count` lines.
  void render(const std::string& name, const std::string& help, std::string* out) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  // One finished HTTP request to `endpoint` with `status`.
  void count_request(const std::string& endpoint, int status);
  void add_tokens(uint64_t prompt, uint64_t generated);
  void observe_ttft(double s) { ttft_.observe(s); }
  void observe_tpot(double s) { tpot_.observe(s); }
  void count_rejected(const std::string& reason);
  void count_cancelled();

  std::string render(const EngineStats& e) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> rejected_;
  uint64_t prompt_tokens_ = 0, generated_tokens_ = 0, cancelled_ = 0;
  Histogram ttft_, tpot_;
};

}  // namespace tern::server
