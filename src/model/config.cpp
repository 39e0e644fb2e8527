#include "model/config.h"

#include <cmath>
#include <numbers>

namespace tern {

const char* rope_style_name(RopeStyle s) { return s == RopeStyle::Adjacent ? "adjacent pairs" : "half split"; }

Status validate_config(const ModelConfig& c, const std::string& source) {
  // Generous upper bounds: far above any real Llama, low enough that products cannot overflow int64.
  auto check = [&](const char* what, int64_t v, int64_t lo, int64_t hi) -> Status {
    if (v < lo || v > hi)
      return error(source + ": " + what + " = " + std::to_string(v) + " is out of range [" + std::to_string(lo) +
                   ", " + std::to_string(hi) + "]");
    return Status();
  };
  TERN_TRY(check("dim", c.dim, 1, 1 << 16));
  TERN_TRY(check("hidden_dim", c.hidden_dim, 1, 1 << 18));
  TERN_TRY(check("n_layers", c.n_layers, 1, 1024));
  TERN_TRY(check("n_heads", c.n_heads, 1, 1024));
  TERN_TRY(check("n_kv_heads", c.n_kv_heads, 1, c.n_heads));
  TERN_TRY(check("head_dim", c.head_dim, 2, 1024));
  TERN_TRY(check("vocab_size", c.vocab_size, 1, 1 << 22));
  TERN_TRY(check("max_seq_len", c.max_seq_len, 1, 1 << 24));
  if (c.n_heads % c.n_kv_heads != 0)
    return error(source + ": n_heads " + std::to_string(c.n_heads) + " is not a multiple of n_kv_heads " +
                 std::to_string(c.n_kv_heads));
  if (c.head_dim % 2 != 0) return error(source + ": head_dim " + std::to_string(c.head_dim) + " is odd; RoPE needs pairs");
  if (!(c.rope_theta > 0.0f)) return error(source + ": rope theta must be positive");
  if (!(c.norm_eps > 0.0f) || c.norm_eps > 1.0f) return error(source + ": RMSNorm epsilon must be in (0, 1]");
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type == RopeScalingType::Llama3) {
    if (!(rs.factor > 0.0f) || !std::isfinite(rs.factor))
      return error(source + ": llama3 rope scaling factor must be positive, got " + std::to_string(rs.factor));
    if (!(rs.low_freq_factor > 0.0f) || !(rs.high_freq_factor > rs.low_freq_factor) ||
        !std::isfinite(rs.high_freq_factor))
      return error(source + ": llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor, got " +
                   std::to_string(rs.low_freq_factor) + " and " + std::to_string(rs.high_freq_factor));
    TERN_TRY(check("llama3 rope scaling original_max_position_embeddings", rs.original_context, 1, 1 << 24));
    if (!c.rope_freq_factors.empty())
      return error(source + ": both a llama3 rope scaling and per-pair rope frequency factors are set");
  }
  if (!c.rope_freq_factors.empty()) {
    if (c.rope_freq_factors.size() != static_cast<size_t>(c.head_dim / 2))
      return error(source + ": " + std::to_string(c.rope_freq_factors.size()) +
                   " rope frequency factors, expected head_dim/2 = " + std::to_string(c.head_dim / 2));
    for (float f : c.rope_freq_factors)
      if (!(f > 0.0f) || !std::isfinite(f))
        return error(source + ": rope frequency factor " + std::to_string(f) + " is not a positive number");
  }
  return Status();
}

std::vector<float> rope_llama3_factors(const ModelConfig& c) {
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type != RopeScalingType::Llama3) return {};
  const int half = c.head_dim / 2;
  const double orig = rs.original_context, low = rs.low_freq_factor, high = rs.high_freq_factor;
  const double low_freq_wavelen = orig / low, high_freq_wavelen = orig / high;
  std::vector<float> out(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    const double freq = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double scaled = freq;                                         // short wavelengths: unchanged
    if (wavelen > low_freq_wavelen) scaled = freq / rs.factor;    // long wavelengths: slowed by `factor`
    else if (wavelen >= high_freq_wavelen) {                      // between: a linear blend in 1/wavelen
      const double smooth = (orig / wavelen - low) / (high - low);
      scaled = (1.0 - smooth) * freq / rs.factor + smooth * freq;
    }
    out[static_cast<size_t>(i)] = static_cast<float>(freq / scaled);
  }
  return out;
}

std::vector<float> rope_frequencies(const ModelConfig& c) {
  const int half = c.head_dim / 2;
  const std::vector<float> divisors = c.rope_freq_factors.empty() ? rope_llama3_factors(c) : c.rope_freq_factors;
  std::vector<float> out(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    double freq = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
    if (!divisors.empty()) freq /= divisors[static_cast<size_t>(i)];
    out[static_cast<size_t>(i)] = static_cast<float>(freq);
  }
  return out;
}

}  // namespace tern
