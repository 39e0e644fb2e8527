// Validating the estimator against measurement: for each model file, the roofline's prefill and decode tok/s
// on this machine (from the hwprobe hardware) beside what `tern bench` measures, with the error of each,
// under both ceilings (perf/estimator.h): the hardware peaks, and tern's matmul kernels as hwprobe measured
// them. The gap between the two predictions is the kernels' distance from the hardware; what remains between
// the kernels prediction and the measurement is time the per-op model does not account for. The measuring is
// passed in as a function so that the library does not depend on how bench is reached.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "perf/estimator.h"
#include "perf/hardware.h"

namespace tern::perf {

// Targets of issue 5 for the roofline's error against measurement.
inline constexpr double kDecodeErrorTarget = 0.15;
inline constexpr double kPrefillErrorTarget = 0.25;

struct BenchWorkload {
  int64_t prompt = 128;         // prompt tokens (batch 1)
  int64_t output = 64;          // generated tokens
  int64_t prefill_chunk = 256;  // tokens per forward call in tern's prefill (tern bench's --chunk default)
};

struct Measured {
  double prefill_tok_s = 0;
  double decode_tok_s = 0;
};

// Measures one model; an error leaves the row's measured columns empty, with the message as its note.
using Measurer = std::function<Result<Measured>(const std::string& model_path, const BenchWorkload& w)>;

struct Prediction {
  double prefill_tok_s = 0;
  double decode_tok_s = 0;
};

struct ValidationRow {
  std::string model;                  // path
  std::string weights;                // "F32", "Q4_0", ...
  Prediction peaks;                   // under the hardware peaks
  std::optional<Prediction> kernels;  // under the matmul kernels' ceilings; none when the hardware has none
  std::optional<Measured> measured;
  std::optional<ModelCeilings> probed;  // the model's own shapes' and attention's ceilings, when probed
  std::string note;
  // predicted / measured - 1 (positive: the roofline is faster than measured, as a bound should be); NaN
  // without a measurement or a prediction under those ceilings.
  double prefill_error(Ceilings c = Ceilings::Peaks) const;
  double decode_error(Ceilings c = Ceilings::Peaks) const;
};

// Measures tern's matmul on a model's own weight shapes and its attention (perf/kernel_probe.h) just before
// the model is measured, so that its kernels prediction uses ceilings of its shapes from the same minutes as
// the run.
using ShapeProber = std::function<Result<ModelCeilings>(const ModelSpec& m, const Workload& w)>;

// Estimates each model on `hw` with tern's CPU defaults (f32 activations and KV cache) for the bench
// workload, under the peaks and, where `hw` has matmul kernel ceilings or `probe` is given, under those
// (with `probe`, each model's own shapes, measured right before its run); then measures it. An unreadable
// model file, or a failed shape probe, fails the whole run, naming the file.
Result<std::vector<ValidationRow>> run_validation(const std::vector<std::string>& models, const Hardware& hw,
                                                  const BenchWorkload& w, const Measurer& measure,
                                                  const ShapeProber& probe = {});

std::string format_validation(const std::vector<ValidationRow>& rows, const BenchWorkload& w);
// Each probed row's shape ceilings, a line per shape: what the kernels predictions of those rows rest on.
std::string format_validation_shapes(const std::vector<ValidationRow>& rows);

// Reads `tern bench --json` output: numbers "prefill_tok_s" and "decode_tok_s" at the top level.
Result<Measured> parse_bench_json(const std::string& text);

}  // namespace tern::perf
