#include "server/metrics.h"

#include <cstdio>

namespace tern::server {

namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void line(std::string* out, const std::string& name, const std::string& labels, double v) {
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += " " + num(v) + "\n";
}

void header(std::string* out, const std::string& name, const char* type, const std::string& help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, const std::string& help, std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  header(out, name, "histogram", help);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    line(out, name + "_bucket", "le=\"" + num(bounds_[i]) + "\"", static_cast<double>(cum));
  }
  cum += counts_.back();
  line(out, name + "_bucket", "le=\"+Inf\"", static_cast<double>(cum));
  line(out, name + "_sum", "", sum_);
  line(out, name + "_count", "", static_cast<double>(count_));
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::add_tokens(uint64_t prompt, uint64_t generated) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += prompt;
  generated_tokens_ += generated;
}

void Metrics::count_rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

void Metrics::count_cancelled() {
  std::lock_guard<std::mutex> lock(mu_);
  ++cancelled_;
}

std::string Metrics::render(const EngineStats& e) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    header(&out, "tern_requests_total", "counter", "HTTP requests by endpoint and status code");
    for (const auto& [k, v] : requests_)
      line(&out, "tern_requests_total", "endpoint=\"" + k.first + "\",code=\"" + std::to_string(k.second) + "\"",
           static_cast<double>(v));
    header(&out, "tern_requests_rejected_total", "counter", "generation requests refused by admission control");
    for (const auto& [k, v] : rejected_) line(&out, "tern_requests_rejected_total", "reason=\"" + k + "\"", static_cast<double>(v));
    header(&out, "tern_requests_cancelled_total", "counter", "generations cancelled (client gone or stop string)");
    line(&out, "tern_requests_cancelled_total", "", static_cast<double>(cancelled_));
    header(&out, "tern_prompt_tokens_total", "counter", "prompt tokens of finished requests");
    line(&out, "tern_prompt_tokens_total", "", static_cast<double>(prompt_tokens_));
    header(&out, "tern_generated_tokens_total", "counter", "tokens generated for finished requests");
    line(&out, "tern_generated_tokens_total", "", static_cast<double>(generated_tokens_));
  }
  auto gauge = [&](const char* name, const char* help, double v) {
    header(&out, name, "gauge", help);
    line(&out, name, "", v);
  };
  gauge("tern_queue_depth", "requests waiting for a sequence slot", e.queued);
  gauge("tern_active_sequences", "sequences being prefilled or decoded", e.active);
  gauge("tern_batch_tokens", "tokens in the last batched forward pass", e.last_batch_tokens);
  gauge("tern_batch_sequences", "sequences in the last batched forward pass", e.last_batch_seqs);
  gauge("tern_kv_blocks_total", "blocks in the paged KV cache pool", e.kv_blocks_total);
  gauge("tern_kv_blocks_used", "blocks taken from the pool (sequences and cached prefixes)", e.kv_blocks_used);
  gauge("tern_kv_blocks_in_use", "blocks held by running sequences", e.kv_blocks_in_use);
  gauge("tern_kv_blocks_cached", "blocks remembered by the prompt prefix cache", e.kv_blocks_cached);
  header(&out, "tern_engine_steps_total", "counter", "batched forward passes");
  line(&out, "tern_engine_steps_total", "", static_cast<double>(e.steps));
  header(&out, "tern_prefix_cached_tokens_total", "counter", "prompt tokens served from the prefix cache");
  line(&out, "tern_prefix_cached_tokens_total", "", static_cast<double>(e.cached_prompt_tokens));
  ttft_.render("tern_time_to_first_token_seconds", "time from request to first generated token", &out);
  tpot_.render("tern_time_per_output_token_seconds", "time between generated tokens of a stream", &out);
  return out;
}

}  // namespace tern::server
