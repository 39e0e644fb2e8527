#include "model/config.h"

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
  return Status();
}

}  // namespace tern
