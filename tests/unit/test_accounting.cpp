// FLOP and byte accounting (perf/accounting.h) against counts worked out by hand for a tiny config, and the
// published parameter counts and KV sizes of real models.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "formats/model_file.h"
#include "perf/accounting.h"
#include "perf/presets.h"
#include "test_util.h"

namespace {

using namespace tern;
using namespace tern::perf;

// dim 8, ffn 16, 2 layers, 2 query heads and 1 kv head of 4, vocab 10, tied classifier.
ModelConfig tiny() {
  ModelConfig c;
  c.dim = 8;
  c.hidden_dim = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  c.vocab_size = 10;
  c.max_seq_len = 64;
  c.tied_embeddings = true;
  return c;
}

// f16 weights (norms too), f16 KV cache, f32 activations: three different sizes so mix-ups show.
Precision tiny_precision() {
  Precision p;
  p.weights = uniform_weight_bytes(DType::F16);
  p.kv_bytes = 2;
  p.act_bytes = 4;
  return p;
}

// Two sequences, each adding 3 tokens after 1 cached one; flash tiles of 2 query rows.
StepShape tiny_shape() {
  StepShape s;
  s.batch = 2;
  s.n_tokens = 3;
  s.kv_start = 1;
  s.assume.flash_block = 2;
  return s;
}

std::map<std::string, OpCost> by_name(const std::vector<OpCost>& ops) {
  std::map<std::string, OpCost> m;
  for (const auto& o : ops) m[o.name] = o;
  return m;
}

struct Want {
  double flops, read, written;
};

// R = 6 rows, D = 8, Q = 8, KV = 4, H = 16, V = 10; weights 2 bytes, activations 4, KV 2.
TEST(Accounting, TinyConfigHandCounts) {
  const auto ops = step_ops(tiny(), tiny_precision(), tiny_shape());
  const auto m = by_name(ops);
  const std::map<std::string, Want> want = {
      {"token_embd", {0, 6 * 8 * 2, 6 * 8 * 4}},                      // 6 rows gathered
      {"attn_norm", {4 * 6 * 8, 6 * 8 * 4 + 8 * 2, 6 * 8 * 4}},       // 192, 208, 192
      {"attn_q", {2 * 6 * 8 * 8, 8 * 8 * 2 + 6 * 8 * 4, 6 * 8 * 4}},  // 768, 320, 192
      {"attn_k", {2 * 6 * 8 * 4, 4 * 8 * 2 + 6 * 8 * 4, 6 * 4 * 4}},  // 384, 256, 96
      {"attn_v", {2 * 6 * 8 * 4, 4 * 8 * 2 + 6 * 8 * 4, 6 * 4 * 4}},
      {"rope", {3 * 6 * 12, 6 * 12 * 4, 6 * 12 * 4}},   // 216, 288, 288
      {"kv_store", {0, 2 * 6 * 4 * 4, 2 * 6 * 4 * 2}},  // 0, 192, 96
      // Causal pairs per head: 3 * 1 + 3 * 4 / 2 = 9; FLOPs 2 seq * 2 heads * 9 * (4 * 4 + 5) = 756.
      // Tiles of 2 rows see 3 and 4 keys: 7 keys * 2 seq * 1 kv head * 4 * 2 bytes * (K, V) = 224, + Q 192.
      {"attention", {756, 192 + 224, 192}},
      {"attn_output", {2 * 6 * 8 * 8, 8 * 8 * 2 + 6 * 8 * 4, 6 * 8 * 4}},
      {"attn_residual", {6 * 8, 2 * 6 * 8 * 4, 6 * 8 * 4}},  // 48, 384, 192
      {"ffn_norm", {4 * 6 * 8, 6 * 8 * 4 + 8 * 2, 6 * 8 * 4}},
      {"ffn_gate", {2 * 6 * 8 * 16, 16 * 8 * 2 + 6 * 8 * 4, 6 * 16 * 4}},  // 1536, 448, 384
      {"ffn_up", {2 * 6 * 8 * 16, 16 * 8 * 2 + 6 * 8 * 4, 6 * 16 * 4}},
      {"swiglu", {5 * 6 * 16, 2 * 6 * 16 * 4, 6 * 16 * 4}},                // 480, 768, 384
      {"ffn_down", {2 * 6 * 16 * 8, 8 * 16 * 2 + 6 * 16 * 4, 6 * 8 * 4}},  // 1536, 640, 192
      {"ffn_residual", {6 * 8, 2 * 6 * 8 * 4, 6 * 8 * 4}},
      // Logits for the last token of each of the 2 sequences only; the tied classifier reads the table.
      {"output_norm", {4 * 2 * 8, 2 * 8 * 4 + 8 * 2, 2 * 8 * 4}},        // 64, 80, 64
      {"output", {2 * 2 * 8 * 10, 10 * 8 * 2 + 2 * 8 * 4, 2 * 10 * 4}},  // 320, 224, 80
  };
  ASSERT_EQ(ops.size(), want.size());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(m.count(name)) << name;
    const OpCost& o = m.at(name);
    EXPECT_DOUBLE_EQ(o.flops, w.flops) << name;
    EXPECT_DOUBLE_EQ(o.bytes_read, w.read) << name;
    EXPECT_DOUBLE_EQ(o.bytes_written, w.written) << name;
    const bool per_layer = name != "token_embd" && name != "output_norm" && name != "output";
    EXPECT_EQ(o.repeat, per_layer ? 2 : 1) << name;
  }
  EXPECT_DOUBLE_EQ(m.at("attention").kv_read, 224);
  EXPECT_DOUBLE_EQ(m.at("kv_store").kv_written, 96);
  EXPECT_DOUBLE_EQ(m.at("attn_q").weight_bytes, 128);
  EXPECT_DOUBLE_EQ(m.at("token_embd").weight_bytes, 96);

  // Totals: per-layer ops twice, the rest once.
  double flops = 0;
  for (const auto& [name, w] : want) flops += w.flops * m.at(name).repeat;
  EXPECT_DOUBLE_EQ(totals(ops).flops, flops);
}

TEST(Accounting, TinyConfigNaiveAttention) {
  StepShape s = tiny_shape();
  s.attention = AttentionKind::Naive;
  const auto m = by_name(step_ops(tiny(), tiny_precision(), s));
  ASSERT_FALSE(m.count("attention"));
  // 9 pairs per head; scores 2 seq * 2 heads * 9 * 4 bytes = 144; K (or V) once: 2 seq * 4 keys * 4 * 2 = 64.
  EXPECT_DOUBLE_EQ(m.at("attn_scores").flops, 2 * 4 * 2 * 2 * 9);
  EXPECT_DOUBLE_EQ(m.at("attn_scores").bytes_read, 192 + 64);
  EXPECT_DOUBLE_EQ(m.at("attn_scores").bytes_written, 144);
  EXPECT_DOUBLE_EQ(m.at("attn_softmax").flops, 5 * 2 * 2 * 9);
  EXPECT_DOUBLE_EQ(m.at("attn_softmax").bytes(), 288);
  EXPECT_DOUBLE_EQ(m.at("attn_values").flops, 288);
  EXPECT_DOUBLE_EQ(m.at("attn_values").bytes_read, 144 + 64);
  EXPECT_DOUBLE_EQ(m.at("attn_values").bytes_written, 192);
}

TEST(Accounting, TinyConfigAssumptions) {
  StepShape s = tiny_shape();
  s.assume.causal = false;  // 3 queries x 4 keys = 12 pairs; both tiles stream all 4 keys
  auto m = by_name(step_ops(tiny(), tiny_precision(), s));
  EXPECT_DOUBLE_EQ(m.at("attention").flops, 2 * 2 * 12 * 21);
  EXPECT_DOUBLE_EQ(m.at("attention").kv_read, 2 * 8 * 1 * 4 * 2 * 2);

  s = tiny_shape();
  s.assume.expand_kv = true;  // K/V per query head: twice the bytes with 2 query heads per kv head
  m = by_name(step_ops(tiny(), tiny_precision(), s));
  EXPECT_DOUBLE_EQ(m.at("attention").kv_read, 448);

  s = tiny_shape();
  s.assume.logits_all = true;  // all 6 rows through the classifier
  m = by_name(step_ops(tiny(), tiny_precision(), s));
  EXPECT_DOUBLE_EQ(m.at("output").flops, 2 * 6 * 8 * 10);

  s = tiny_shape();
  s.assume.embedding_matmul = true;  // one-hot (6, 10) x (10, 8)
  m = by_name(step_ops(tiny(), tiny_precision(), s));
  EXPECT_DOUBLE_EQ(m.at("token_embd").flops, 2 * 6 * 10 * 8);
  EXPECT_DOUBLE_EQ(m.at("token_embd").bytes_read, 10 * 8 * 2 + 6 * 10 * 4);

  s = tiny_shape();
  s.want_logits = false;  // a prefill chunk that is not the last
  m = by_name(step_ops(tiny(), tiny_precision(), s));
  EXPECT_FALSE(m.count("output"));
  EXPECT_FALSE(m.count("output_norm"));
}

TEST(Accounting, DecodeStepOfOneSequence) {
  // One token after 5 cached: it attends to 6 keys, streamed once (one tile).
  StepShape s;
  s.kv_start = 5;
  const auto m = by_name(step_ops(tiny(), tiny_precision(), s));
  EXPECT_DOUBLE_EQ(m.at("attention").flops, 1 * 2 * 6 * 21);
  EXPECT_DOUBLE_EQ(m.at("attention").kv_read, 6 * 1 * 4 * 2 * 2);
  EXPECT_DOUBLE_EQ(decode_bytes_per_token(tiny(), tiny_precision(), 5),
                   totals(step_ops(tiny(), tiny_precision(), s)).bytes());
}

TEST(Accounting, ParamsAndWeightBytesOfTinyConfig) {
  // 10*8 embedding + 2 * (8*8 + 2*8*4 + 8*8 + 3*8*16 + 2*8) + 8 final norm = 80 + 2*592 + 8
  EXPECT_EQ(param_count(tiny()), 80 + 2 * 592 + 8);
  EXPECT_DOUBLE_EQ(weight_bytes_total(tiny(), uniform_weight_bytes(DType::F16)), 2.0 * (80 + 2 * 592 + 8));
  // Q8_0: 34 bytes per 32 weights for matrices, F32 norms.
  const double q8 = 34.0 / 32;
  EXPECT_DOUBLE_EQ(weight_bytes_total(tiny(), uniform_weight_bytes(DType::Q8_0)),
                   q8 * (80 + 2 * (592 - 16)) + 4.0 * (2 * 16 + 8));
}

TEST(Accounting, Biases) {
  ModelConfig c = tiny();
  c.attn_bias = true;  // q, k, v, output biases: 8 + 4 + 4 + 8 per layer
  c.mlp_bias = true;   // gate, up, down biases: 16 + 16 + 8 per layer
  EXPECT_EQ(param_count(c), param_count(tiny()) + 2 * (24 + 40));
  const auto m = by_name(step_ops(c, tiny_precision(), tiny_shape()));
  EXPECT_DOUBLE_EQ(m.at("attn_q").flops, 768 + 6 * 8);  // one add per output
  EXPECT_DOUBLE_EQ(m.at("attn_q").weight_bytes, 128 + 8 * 2);
  EXPECT_DOUBLE_EQ(m.at("ffn_down").flops, 1536 + 6 * 8);
  EXPECT_DOUBLE_EQ(weight_bytes_total(c, uniform_weight_bytes(DType::F16)), 2.0 * param_count(c));
}

TEST(Accounting, Llama3_8bParamsAndKvBytes) {
  auto p = find_model_preset("llama-3-8b");
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_EQ(param_count(p->config), 8030261248);                     // "8.03 B"
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(p->config, 2.0), 128 * 1024);  // 2 * 32 layers * 1024 * 2 bytes
}

TEST(Accounting, PresetParamCounts) {
  const std::map<std::string, int64_t> published = {
      {"llama-3-8b", 8030261248},   {"llama-2-7b", 6738415616},     {"mistral-7b", 7248023552},
      {"llama-3.2-1b", 1235814400}, {"tinyllama-1.1b", 1100048384}, {"smollm2-135m", 134515008},
      {"stories15M", 15191712},     {"stories110M", 109529856},
  };
  ASSERT_EQ(model_presets().size(), published.size());
  for (const auto& [key, n] : published) {
    auto p = find_model_preset(key);
    ASSERT_TRUE(p.ok()) << p.message();
    EXPECT_EQ(param_count(p->config), n) << key;
    EXPECT_TRUE(validate_config(p->config, key).ok()) << key;
  }
}

TEST(Accounting, MistralPresetMatchesSharedConfig) {
  TERN_REQUIRE_SHARED(path, "models/mistral-v0.3/config.json");
  const auto j = nlohmann::json::parse(tern_test::read_file(path));
  const ModelConfig c = find_model_preset("mistral-7b")->config;
  EXPECT_EQ(c.dim, j["hidden_size"].get<int>());
  EXPECT_EQ(c.hidden_dim, j["intermediate_size"].get<int>());
  EXPECT_EQ(c.n_layers, j["num_hidden_layers"].get<int>());
  EXPECT_EQ(c.n_heads, j["num_attention_heads"].get<int>());
  EXPECT_EQ(c.n_kv_heads, j["num_key_value_heads"].get<int>());
  EXPECT_EQ(c.vocab_size, j["vocab_size"].get<int>());
  EXPECT_EQ(c.max_seq_len, j["max_position_embeddings"].get<int>());
  EXPECT_EQ(c.tied_embeddings, j["tie_word_embeddings"].get<bool>());
}

TEST(Accounting, UnknownPresetListsValidOnes) {
  auto p = find_model_preset("llama-9");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("llama-9"), std::string::npos);
  EXPECT_NE(p.message().find("llama-3-8b, llama-2-7b, mistral-7b"), std::string::npos) << p.message();
}

TEST(Accounting, DtypeNamesAndBytes) {
  EXPECT_EQ(parse_dtype("Q4_K").value(), DType::Q4_K);
  EXPECT_EQ(parse_dtype("bf16").value(), DType::BF16);
  EXPECT_DOUBLE_EQ(dtype_bytes(DType::Q8_0), 34.0 / 32);
  EXPECT_DOUBLE_EQ(dtype_bytes(DType::Q4_0), 18.0 / 32);
  EXPECT_DOUBLE_EQ(dtype_bytes(DType::Q4_1), 20.0 / 32);
  EXPECT_DOUBLE_EQ(dtype_bytes(DType::Q4_K), 144.0 / 256);
  EXPECT_DOUBLE_EQ(dtype_bytes(DType::Q6_K), 210.0 / 256);
  auto bad = parse_dtype("q9_9");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("f32, f16, bf16, q8_0"), std::string::npos) << bad.message();
}

TEST(Accounting, WeightBytesFromAFile) {
  TERN_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  auto mf = load_model_file(path);
  ASSERT_TRUE(mf.ok()) << mf.message();
  auto sw = weight_bytes_from_store(mf.value()->config, mf.value()->weights);
  ASSERT_TRUE(sw.ok()) << sw.message();
  EXPECT_EQ(sw->name, "F32");
  EXPECT_EQ(sw->dominant, DType::F32);
  EXPECT_DOUBLE_EQ(sw->bytes.attn_q, 4.0);
  EXPECT_DOUBLE_EQ(sw->bytes.output, 4.0);  // tied: the embedding table
  // Per-matrix ratios times the shapes give back exactly the file's tensor bytes.
  EXPECT_DOUBLE_EQ(weight_bytes_total(mf.value()->config, sw->bytes), sw->total_bytes);
  EXPECT_DOUBLE_EQ(sw->total_bytes, static_cast<double>(mf.value()->weights.total_bytes()));
}

TEST(Accounting, WeightBytesOfAnF16File) {
  TERN_REQUIRE_SHARED(path, "models/tiny-random/llama-2-tiny-random.gguf");
  auto mf = load_model_file(path);
  ASSERT_TRUE(mf.ok()) << mf.message();
  auto sw = weight_bytes_from_store(mf.value()->config, mf.value()->weights);
  ASSERT_TRUE(sw.ok()) << sw.message();
  EXPECT_DOUBLE_EQ(sw->bytes.attn_q, 2.0);
  EXPECT_DOUBLE_EQ(sw->total_bytes, static_cast<double>(mf.value()->weights.total_bytes()));
}

// Each matmul carries its matrix's type (it picks the kernel ceiling the estimator bounds it by); the types
// of a file are per role, the one with the most bytes where the layers differ.
TEST(Accounting, MatmulsCarryTheirWeightType) {
  ModelConfig c = tiny();
  c.dim = 32;
  c.hidden_dim = 64;
  c.head_dim = 16;
  Precision p = tiny_precision();
  p.weight_types.ffn_down = DType::Q6_K;
  p.weight_types.output = DType::Q8_0;
  const auto ops = by_name(step_ops(c, p, tiny_shape()));
  EXPECT_EQ(ops.at("ffn_down").weight_dtype, DType::Q6_K);
  EXPECT_EQ(ops.at("output").weight_dtype, DType::Q8_0);
  EXPECT_EQ(ops.at("attn_q").weight_dtype, DType::F16);
  EXPECT_EQ(uniform_weight_types(DType::Q4_K).ffn_gate, DType::Q4_K);

  // A store of the same shapes: attn_q Q8_0 in layer 0 and Q4_0 in layer 1 (Q8_0 has more bytes), the rest
  // F32, norms F32, the classifier tied to a Q4_1 embedding table. Only names, shapes, types and sizes count.
  WeightStore store;
  auto add = [&](const std::string& name, DType t, std::vector<int64_t> shape) {
    TensorView v;
    v.name = name;
    v.dtype = t;
    v.shape = shape;
    v.nbytes = row_bytes(t, static_cast<uint64_t>(shape.back())) * static_cast<size_t>(v.rows());
    store.add(v);
  };
  const int64_t D = c.dim, H = c.hidden_dim, Q = c.q_dim(), KV = c.kv_dim();
  add("token_embd.weight", DType::Q4_1, {c.vocab_size, D});
  add("output_norm.weight", DType::F32, {D});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_q.weight", l == 0 ? DType::Q8_0 : DType::Q4_0, {Q, D});
    add(b + "attn_k.weight", DType::F32, {KV, D});
    add(b + "attn_v.weight", DType::F32, {KV, D});
    add(b + "attn_output.weight", DType::F32, {D, Q});
    add(b + "ffn_gate.weight", DType::F32, {H, D});
    add(b + "ffn_up.weight", DType::F32, {H, D});
    add(b + "ffn_down.weight", DType::F32, {D, H});
    add(b + "attn_norm.weight", DType::F32, {D});
    add(b + "ffn_norm.weight", DType::F32, {D});
  }
  auto sw = weight_bytes_from_store(c, store);
  ASSERT_TRUE(sw.ok()) << sw.message();
  EXPECT_EQ(sw->types.attn_q, DType::Q8_0);
  EXPECT_EQ(sw->types.ffn_down, DType::F32);
  EXPECT_EQ(sw->types.token_embd, DType::Q4_1);
  EXPECT_EQ(sw->types.output, DType::Q4_1);                // tied
  EXPECT_DOUBLE_EQ(sw->bytes.attn_q, (34.0 + 18.0) / 64);  // a Q8_0 and a Q4_0 block per 64 elements
  EXPECT_EQ(sw->dominant, DType::F32);
}

// Hugging Face folders with biases, GQA, tied and sharded weights: the per-matrix ratios still give back the
// folder's exact tensor bytes.
TEST(Accounting, WeightBytesOfHfFolders) {
  const std::string root = std::string(TERN_SOURCE_DIR) + "/tests/golden/hf/";
  int checked = 0;
  for (const char* name :
       {"llama_bias_mha", "llama_gqa_tied", "llama_llama3_untied_sharded", "mistral_gqa"}) {
    auto mf = load_model_file(root + name);
    if (!mf) continue;  // fixture not present in this checkout
    auto sw = weight_bytes_from_store(mf.value()->config, mf.value()->weights);
    ASSERT_TRUE(sw.ok()) << name << ": " << sw.message();
    EXPECT_DOUBLE_EQ(weight_bytes_total(mf.value()->config, sw->bytes), sw->total_bytes) << name;
    EXPECT_EQ(param_count(mf.value()->config), mf.value()->weights.total_params()) << name;
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no Hugging Face fixtures under tests/golden/hf";
}

}  // namespace
