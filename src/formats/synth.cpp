#include "formats/synth.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/quant.h"
#include "core/rng.h"
#include "formats/gguf_writer.h"
#include "formats/quantize_model.h"
#include "perf/presets.h"

namespace tern {

namespace {

struct ShapeName {
  const char* name;
  const char* preset;
};

constexpr ShapeName kShapes[] = {
    {"stories15M", "stories15M"},         {"stories110M", "stories110M"},   {"SmolLM2-135M", "smollm2-135m"},
    {"TinyLlama-1.1B", "tinyllama-1.1b"}, {"Llama-3.2-1B", "llama-3.2-1b"}, {"Llama-2-7B", "llama-2-7b"},
    {"Llama-3-8B", "llama-3-8b"},         {"Mistral-7B", "mistral-7b"},
};

constexpr DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                            DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q6_K};

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

int64_t block_elems_of(DType t) { return dtype_info(static_cast<uint32_t>(t))->block_elems; }

// The synthetic SentencePiece vocabulary: <unk>, <s>, </s>, 256 byte tokens, then unique filler pieces
// ("▁a", "a", "▁b", ... in bijective base 26) with decreasing scores.
void add_tokenizer(GgufWriter& w, int vocab) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  tokens.reserve(static_cast<size_t>(vocab));
  auto push = [&](std::string piece, float score, int32_t type) {
    tokens.push_back(std::move(piece));
    scores.push_back(score);
    types.push_back(type);
  };
  push("<unk>", 0.0f, 2);  // UNKNOWN
  push("<s>", 0.0f, 3);    // CONTROL
  push("</s>", 0.0f, 3);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    push(buf, 0.0f, 6);  // BYTE
  }
  for (int k = 0; static_cast<int>(tokens.size()) < vocab; ++k) {
    std::string letters;
    for (int v = k / 2 + 1; v > 0; v = (v - 1) / 26) letters.insert(letters.begin(), static_cast<char>('a' + (v - 1) % 26));
    push((k % 2 == 0 ? "\xE2\x96\x81" : "") + letters, -static_cast<float>(k + 1), 1);  // NORMAL
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

int file_type_code(DType t) { return t == DType::Q6_K ? 18 : llama_file_type(t); }  // 18: MOSTLY_Q6_K

// N(0, 1) quantiles at the midpoints of 65536 equal-probability bins, (i + 0.5) / 65536, by bisection on
// erfc. Two samples per 32-bit draw (one per 16-bit half): a 7B model has billions of weights, and this is
// a table lookup where Box-Muller would be a log, a sqrt and a sin/cos. Tails end at about 4.3 sigma.
const std::vector<float>& normal_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (size_t i = 0; i < t.size(); ++i) {
      const double p = (static_cast<double>(i) + 0.5) / 65536.0;
      double lo = -10, hi = 10;  // Phi(x) = erfc(-x / sqrt 2) / 2 is increasing
      for (int it = 0; it < 60; ++it) {
        const double mid = 0.5 * (lo + hi);
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
      }
      t[i] = static_cast<float>(0.5 * (lo + hi));
    }
    return t;
  }();
  return table;
}

void fill_normal(Rng& rng, const float* table, float* x, int64_t n, float sd) {
  for (int64_t i = 0; i < n; i += 2) {
    const uint32_t u = rng.next_u32();
    x[i] = sd * table[u & 0xFFFF];
    if (i + 1 < n) x[i + 1] = sd * table[u >> 16];
  }
}

void encode_row(DType t, const float* x, uint8_t* dst, int64_t n) {
  if (t == DType::Q6_K)
    quantize_row_q6_k(x, dst, n);
  else
    quantize_row(t, x, dst, n);
}

constexpr int64_t kRowsPerBlock = 16;  // rows generated from one seeded stream

}  // namespace

const std::vector<std::string>& synth_shape_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const ShapeName& s : kShapes) v.push_back(s.name);
    return v;
  }();
  return names;
}

std::string synth_shape_names_text() {
  std::string s;
  for (const std::string& n : synth_shape_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

Result<ModelConfig> synth_shape(const std::string& name) {
  for (const ShapeName& s : kShapes) {
    if (lower(name) != lower(s.name) && lower(name) != lower(s.preset)) continue;
    auto p = perf::find_model_preset(s.preset);
    if (!p) return p.status();
    ModelConfig c = p->config;
    c.name = std::string(s.name) + " (random weights)";
    c.rope_style = RopeStyle::Adjacent;  // GGUF llama order; random weights make the pairing moot
    return c;
  }
  return error("unknown shape '" + name + "' (valid: " + synth_shape_names_text() + ")");
}

bool can_synth(DType t) { return std::find(std::begin(kTypes), std::end(kTypes), t) != std::end(kTypes); }

std::string synth_types_text() {
  std::string s;
  for (DType t : kTypes) s += (s.empty() ? "" : ", ") + std::string(dtype_name(t));
  return s;
}

Result<DType> parse_synth_type(const std::string& name) {
  auto t = dtype_from_name(name);
  if (!t || !can_synth(*t)) return error("unknown type '" + name + "' (valid: " + synth_types_text() + ")");
  return *t;
}

DType synth_matrix_type(DType want, int64_t cols) {
  if (cols % block_elems_of(want) == 0) return want;
  if (cols % kQK == 0 && (want == DType::Q4_K || want == DType::Q6_K)) return DType::Q8_0;
  return DType::F16;
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n) {
  auto* out = static_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* x = src + b * kQK_K;
    BlockQ6_K& blk = out[b];
    std::memset(&blk, 0, sizeof blk);
    float sub[16], max_sub = 0;
    for (int s = 0; s < 16; ++s) {
      float amax = 0;
      for (int i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(x[16 * s + i]));
      sub[s] = amax / 31.0f;
      max_sub = std::max(max_sub, sub[s]);
    }
    const uint16_t dh = f32_to_f16(max_sub / 127.0f);
    const float d = f16_to_f32(dh);
    blk.d = dh;
    for (int s = 0; s < 16; ++s)
      blk.scales[s] = static_cast<int8_t>(d > 0 ? std::clamp(std::lround(sub[s] / d), 0L, 127L) : 0);
    for (int e = 0; e < kQK_K; ++e) {
      const float step = d * blk.scales[e / 16];
      const long q = (step > 0 ? std::clamp(std::lround(x[e] / step), -32L, 31L) : 0L) + 32;
      const int h = e / 128, j = e % 128, l = j % 32, k = j / 32;
      uint8_t& lo = blk.ql[64 * h + l + (k & 1) * 32];
      lo = static_cast<uint8_t>(lo | ((q & 0xF) << (k < 2 ? 0 : 4)));
      uint8_t& hi = blk.qh[32 * h + l];
      hi = static_cast<uint8_t>(hi | (((q >> 4) & 3) << (2 * k)));
    }
  }
}

Result<SynthStats> synth_model(const SynthOptions& o, const std::string& out_path) {
  const auto t0 = std::chrono::steady_clock::now();
  auto shape = synth_shape(o.shape);
  if (!shape) return shape.status();
  if (!can_synth(o.type))
    return error("unknown type '" + std::string(dtype_name(o.type)) + "' (valid: " + synth_types_text() + ")");
  if (o.layers < 0 || o.layers > 1024) return error("--layers must be between 1 and 1024, got " + std::to_string(o.layers));
  ModelConfig c = shape.value();
  if (o.layers > 0) c.n_layers = o.layers;
  TERN_TRY(validate_config(c, "shape " + o.shape));
  if (c.vocab_size < 259) return error("shape " + o.shape + ": vocabulary too small for the byte tokens");
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  GgufWriter w;
  set_llama_metadata(c, w);
  w.set_u32("general.alignment", 32);
  w.set_u32("general.file_type", static_cast<uint32_t>(file_type_code(o.type)));
  if (o.type != DType::F32 && o.type != DType::F16 && o.type != DType::BF16)
    w.set_u32("general.quantization_version", 2);
  add_tokenizer(w, c.vocab_size);

  SynthStats st;
  uint64_t tensor_index = 0;
  // A matrix (rows, cols) of N(0, sd): rows in blocks of kRowsPerBlock, each block from its own stream
  // seeded by (seed, tensor, block), encoded by `threads` threads into the writer's buffer.
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) -> Status {
    const DType t = synth_matrix_type(o.type, cols);
    if (t != o.type) st.fallbacks.push_back({name, t});
    const uint64_t idx = tensor_index++;
    const uint64_t seed = o.seed;
    const float sd = o.stddev;
    const size_t rb = row_bytes(t, static_cast<uint64_t>(cols));
    return w.add_tensor(name, t, {rows, cols}, [=](uint8_t* dst, size_t nbytes) -> Status {
      if (nbytes != rb * static_cast<size_t>(rows)) return error("tensor '" + name + "': size mismatch");
      const int64_t n_blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
      const float* table = normal_table().data();
      auto work = [&](int tid) {
        std::vector<float> x(static_cast<size_t>(cols));
        for (int64_t b = tid; b < n_blocks; b += threads) {
          uint64_t s = seed ^ (idx * 0x9E3779B97F4A7C15ull);
          Rng rng(splitmix64(s) ^ static_cast<uint64_t>(b));
          for (int64_t r = b * kRowsPerBlock; r < std::min(rows, (b + 1) * kRowsPerBlock); ++r) {
            fill_normal(rng, table, x.data(), cols, sd);
            encode_row(t, x.data(), dst + static_cast<size_t>(r) * rb, cols);
          }
        }
      };
      std::vector<std::thread> pool;
      for (int i = 1; i < std::min<int64_t>(threads, n_blocks); ++i) pool.emplace_back(work, i);
      work(0);
      for (auto& th : pool) th.join();
      return Status();
    });
  };
  auto ones = [&](const std::string& name, int64_t n) -> Status {
    ++tensor_index;
    return w.add_tensor(name, DType::F32, {n}, [](uint8_t* dst, size_t nbytes) -> Status {
      const float one = 1.0f;
      for (size_t i = 0; i + 4 <= nbytes; i += 4) std::memcpy(dst + i, &one, 4);
      return Status();
    });
  };

  TERN_TRY(matrix("token_embd.weight", c.vocab_size, c.dim));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    TERN_TRY(ones(p + "attn_norm.weight", c.dim));
    TERN_TRY(matrix(p + "attn_q.weight", c.q_dim(), c.dim));
    TERN_TRY(matrix(p + "attn_k.weight", c.kv_dim(), c.dim));
    TERN_TRY(matrix(p + "attn_v.weight", c.kv_dim(), c.dim));
    TERN_TRY(matrix(p + "attn_output.weight", c.dim, c.q_dim()));
    TERN_TRY(ones(p + "ffn_norm.weight", c.dim));
    TERN_TRY(matrix(p + "ffn_gate.weight", c.hidden_dim, c.dim));
    TERN_TRY(matrix(p + "ffn_up.weight", c.hidden_dim, c.dim));
    TERN_TRY(matrix(p + "ffn_down.weight", c.dim, c.hidden_dim));
  }
  TERN_TRY(ones("output_norm.weight", c.dim));
  if (!c.tied_embeddings) TERN_TRY(matrix("output.weight", c.vocab_size, c.dim));

  TERN_TRY(w.write(out_path));
  st.config = c;
  st.tensors = static_cast<int>(w.tensor_count());
  st.tensor_bytes = w.tensor_data_bytes();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace tern
