// tern synth: a random-weight GGUF model of a real shape (formats/synth.h), for benchmarks and tests.
#include <cstdio>

#include "commands.h"
#include "formats/synth.h"

namespace tern::cli {

int cmd_synth(const Args& a) {
  if (!a.has("shape")) return fail("synth", "--shape is required (valid: " + synth_shape_names_text() + ")");
  if (!a.has("output")) return fail("synth", "--output (-o) is required");
  SynthOptions o;
  o.shape = a.str("shape");
  auto t = parse_synth_type(a.str("type"));
  if (!t) return fail("synth", "--type: " + t.message());
  o.type = t.value();
  o.seed = a.u64("seed");
  const int64_t layers = a.integer("layers"), threads = a.integer("threads");
  if (layers < 0 || layers > 1024) return fail("synth", "--layers must be between 1 and 1024 (0 = the shape's), got " + a.str("layers"));
  if (threads < 0 || threads > 4096) return fail("synth", "--threads must be 0 (all cores) or positive, got " + a.str("threads"));
  o.layers = static_cast<int>(layers);
  o.threads = static_cast<int>(threads);
  auto st = synth_model(o, a.str("output"));
  if (!st) return fail("synth", st.message());
  const ModelConfig& c = st->config;
  std::fprintf(stderr,
               "wrote %s: %s, %s, %d layers, dim %d, ffn %d, %d/%d heads, vocab %d, context %d; %d tensors, "
               "%.1f MB, %.1f s\n",
               a.str("output").c_str(), c.name.c_str(), a.str("type").c_str(), c.n_layers, c.dim, c.hidden_dim,
               c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len, st->tensors,
               static_cast<double>(st->tensor_bytes) / 1e6, st->seconds);
  if (!st->fallbacks.empty())
    std::fprintf(stderr, "%zu matrices have rows that are not whole %s blocks; written as %s (first: %s)\n",
                 st->fallbacks.size(), a.str("type").c_str(),
                 std::string(dtype_name(st->fallbacks.front().type)).c_str(), st->fallbacks.front().tensor.c_str());
  return 0;
}

}  // namespace tern::cli
