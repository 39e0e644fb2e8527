// tern info: what is inside a model file.
#include <cstdio>

#include "commands.h"
#include "formats/model_file.h"

namespace tern::cli {

int cmd_info(const Args& a) {
  if (!a.has("model")) return fail("info", "--model (-m) is required");
  auto mf = load_model_file(a.str("model"));
  if (!mf) return fail("info", mf.message());
  const ModelFile& m = *mf.value();
  const ModelConfig& c = m.config;
  std::printf("file:          %s (%s", m.path.c_str(), model_format_name(m.format));
  if (m.gguf) std::printf(" v%u", m.gguf->version());
  std::printf(")\n");
  if (!c.name.empty()) std::printf("name:          %s\n", c.name.c_str());
  std::printf("architecture:  %s\n", c.arch.c_str());
  std::printf("dim:           %d\nhidden_dim:    %d\nn_layers:      %d\nn_heads:       %d\nn_kv_heads:    %d\n", c.dim,
              c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads);
  std::printf("head_dim:      %d\nvocab_size:    %d\ncontext:       %d\nrope_theta:    %g (%s)\nnorm_eps:      %g\n",
              c.head_dim, c.vocab_size, c.max_seq_len, c.rope_theta, rope_style_name(c.rope_style), c.norm_eps);
  std::printf("classifier:    %s\n", c.tied_embeddings ? "tied to token_embd.weight" : "separate output.weight");
  if (c.rope_scaling.type == RopeScalingType::Llama3)
    std::printf("rope scaling:  llama3 (factor %g, low_freq_factor %g, high_freq_factor %g, original context %d)\n",
                c.rope_scaling.factor, c.rope_scaling.low_freq_factor, c.rope_scaling.high_freq_factor,
                c.rope_scaling.original_context);
  else if (!c.rope_freq_factors.empty())
    std::printf("rope scaling:  per-pair frequency divisors (rope_freqs.weight)\n");
  if (c.attn_bias || c.mlp_bias)
    std::printf("biases:        %s%s%s\n", c.attn_bias ? "attention" : "", c.attn_bias && c.mlp_bias ? ", " : "",
                c.mlp_bias ? "feed-forward" : "");
  const int64_t params = m.weights.total_params();
  const size_t bytes = m.weights.total_bytes();
  std::printf("parameters:    %lld (%.3f M)\nweight bytes:  %zu (%.2f MiB)\n", static_cast<long long>(params),
              params / 1e6, bytes, bytes / 1048576.0);
  if (a.flag("metadata") && m.gguf) {
    std::printf("\nmetadata (%zu keys):\n", m.gguf->metadata().size());
    for (const auto& [k, v] : m.gguf->metadata()) std::printf("  %-40s %s\n", k.c_str(), v.to_string().c_str());
  }
  std::printf("\ntensors (%zu):\n", m.weights.all().size());
  for (const auto& [name, t] : m.weights.all())
    std::printf("  %-32s %-5s %-16s %zu bytes\n", name.c_str(), std::string(dtype_name(t.dtype)).c_str(),
                t.shape_str().c_str(), t.nbytes);
  return 0;
}

}  // namespace tern::cli
