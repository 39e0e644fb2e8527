// Presenting an Estimate: the text report of `tern estimate` and its --json form.
#pragma once

#include <string>

#include "perf/estimator.h"

namespace tern::perf {

// Header (model, precision, hardware, workload), the per-op tables of the prefill and of the mean decode
// step, the latency and throughput figures, and memory.
std::string format_estimate(const Estimate& e);

// The same content as JSON: {"model", "hardware", "workload", "prefill": {"ops": [...]}, "decode", "results",
// "memory"}; times in seconds, sizes in bytes, rates per second.
std::string estimate_to_json(const Estimate& e);

}  // namespace tern::perf
