// Hugging Face model folders and `tern convert`.
//
//  - HfModelGolden: the committed fixtures (tests/golden/hf/, made by tests/reference/make_hf_fixtures.py with
//    transformers): tern's logits equal transformers' fp32 logits within 1e-4 max abs at 32 positions, for
//    GQA/MHA, tied/untied, llama3 RoPE scaling, biases, Mistral, sharded files, F32/F16/BF16.
//  - HfModelConfig: config.json parsing, one test per defect (missing key, wrong type, architecture, ...).
//  - HfModel: folder-level defects on crafted folders (shape mismatch naming the tensor, stray names, ...),
//    and the llama3 frequency table against hand-computed values.
//  - Convert: each fixture written as GGUF gives the same logits as the folder; Q/K permutation; types; CLI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>

#include "backend/backend.h"
#include "formats/convert.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "formats/model_file.h"
#include "formats/safetensors.h"
#include "gguf_builder.h"
#include "model/llama.h"
#include "test_util.h"

using namespace tern;
using namespace tern_test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kFixtures = std::string(TERN_SOURCE_DIR) + "/tests/golden/hf/";
const char* const kFixtureNames[] = {"llama_gqa_tied", "llama_llama3_untied_sharded", "llama_bias_mha",
                                     "mistral_gqa",    "llama_bf16",                  "llama_f16"};

std::vector<int> read_ids(const std::string& dir) {
  std::istringstream in(read_file(dir + "/ids.txt"));
  std::vector<int> ids;
  for (int v; in >> v;) ids.push_back(v);
  return ids;
}

std::vector<float> read_f32(const std::string& path) {
  const std::string b = read_file(path);
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

// Logits (n, vocab) of every position, either in one prefill call or one token at a time.
std::vector<float> run_logits(const ModelFile& m, const std::vector<int>& ids, bool prefill) {
  auto be = make_reference_backend();
  auto model = LlamaModel::create(m.config, m.weights, *be, static_cast<int>(ids.size()), 16);
  EXPECT_TRUE(model.ok()) << model.message();
  if (!model) return {};
  const size_t V = static_cast<size_t>(m.config.vocab_size);
  std::vector<float> out(ids.size() * V);
  if (prefill) {
    Status s = model.value()->forward(ids.data(), static_cast<int>(ids.size()), 0, out.data(), true);
    EXPECT_TRUE(s.ok()) << s.message();
  } else {
    for (size_t i = 0; i < ids.size(); ++i) {
      Status s = model.value()->forward(&ids[i], 1, static_cast<int>(i), out.data() + i * V);
      EXPECT_TRUE(s.ok()) << s.message();
    }
  }
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

std::string fresh_dir(const std::string& tag = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string d = temp_dir() + "/" + info->test_suite_name() + "." + info->name() + tag;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// ---- a crafted tiny folder: dim 8, 2 heads / 1 kv head, 1 layer, hidden 12, vocab 16, tied --------------

json tiny_config() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "intermediate_size": 12,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 16,
    "max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
    "hidden_act": "silu", "attention_bias": false, "mlp_bias": false, "head_dim": 4, "rope_scaling": null})");
}

struct HfTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype = "F32";
};

std::vector<HfTensor> tiny_tensors() {
  return {{"model.embed_tokens.weight", {16, 8}},
          {"model.norm.weight", {8}},
          {"model.layers.0.input_layernorm.weight", {8}},
          {"model.layers.0.post_attention_layernorm.weight", {8}},
          {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
          {"model.layers.0.self_attn.k_proj.weight", {4, 8}},
          {"model.layers.0.self_attn.v_proj.weight", {4, 8}},
          {"model.layers.0.self_attn.o_proj.weight", {8, 8}},
          {"model.layers.0.mlp.gate_proj.weight", {12, 8}},
          {"model.layers.0.mlp.up_proj.weight", {12, 8}},
          {"model.layers.0.mlp.down_proj.weight", {8, 12}}};
}

// A safetensors file of seeded random values for `ts` (header padded to 8 bytes, like the Python writer).
std::string safetensors_of(const std::vector<HfTensor>& ts, uint64_t seed = 5) {
  std::string h = "{", data;
  for (const auto& t : ts) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::string bytes;
    if (t.dtype == "F32") bytes = f32_bytes(random_floats(static_cast<size_t>(n), seed++, 0.5f));
    else if (t.dtype == "BF16") bytes = bf16_bytes(random_floats(static_cast<size_t>(n), seed++, 0.5f));
    else bytes = std::string(static_cast<size_t>(n) * 8, '\0');  // I64 and the like: zeros
    std::string shape;
    for (int64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    if (h.size() > 1) h += ",";
    h += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape + "],\"data_offsets\":[" +
         std::to_string(data.size()) + "," + std::to_string(data.size() + bytes.size()) + "]}";
    data += bytes;
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  return le_u64(h.size()) + h + data;
}

std::string write_folder(const json& cfg, const std::vector<HfTensor>& ts, const std::string& tag = "") {
  const std::string d = fresh_dir(tag);
  write_file(d + "/config.json", cfg.dump(2));
  write_file(d + "/model.safetensors", safetensors_of(ts));
  return d;
}

// Loads a folder and expects an error containing every one of `parts`.
void expect_folder_error(const std::string& dir, std::initializer_list<std::string> parts) {
  auto r = load_model_file(dir);
  ASSERT_FALSE(r.ok()) << "expected an error loading " << dir;
  for (const auto& p : parts) EXPECT_NE(r.message().find(p), std::string::npos) << "lacks '" << p << "': " << r.message();
}

void expect_config_error(const json& cfg, std::initializer_list<std::string> parts) {
  auto r = parse_hf_config(cfg.dump(), "dir/config.json");
  ASSERT_FALSE(r.ok()) << "expected an error for " << cfg.dump();
  EXPECT_NE(r.message().find("dir/config.json"), std::string::npos) << r.message();
  for (const auto& p : parts) EXPECT_NE(r.message().find(p), std::string::npos) << "lacks '" << p << "': " << r.message();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The fixtures against transformers

class HfModelGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(HfModelGolden, LogitsMatchTransformers) {
  const std::string dir = kFixtures + GetParam();
  auto r = load_model_file(dir);
  ASSERT_TRUE(r.ok()) << r.message();
  const ModelFile& m = *r.value();
  EXPECT_EQ(m.format, ModelFormat::HfFolder);
  EXPECT_EQ(m.config.rope_style, RopeStyle::HalfSplit);
  const std::vector<int> ids = read_ids(dir);
  ASSERT_EQ(ids.size(), 32u);
  const std::vector<float> want = read_f32(dir + "/logits.f32");
  ASSERT_EQ(want.size(), ids.size() * static_cast<size_t>(m.config.vocab_size));
  const float d_prefill = max_abs_diff(run_logits(m, ids, true), want);
  const float d_decode = max_abs_diff(run_logits(m, ids, false), want);
  // transformers runs fp32 throughout; tern accumulates in double. Logits span ~10 units; a wrong pairing,
  // scaling or bias moves them by far more than 1e-4.
  EXPECT_LT(d_prefill, 1e-4f);
  EXPECT_LT(d_decode, 1e-4f);
  std::printf("[ hf ] %-30s max abs diff vs transformers: prefill %.2e, decode %.2e\n", GetParam(), d_prefill,
              d_decode);
}

INSTANTIATE_TEST_SUITE_P(HfModel, HfModelGolden, ::testing::ValuesIn(kFixtureNames),
                         [](const auto& p) { return std::string(p.param); });

TEST(HfModelFixtures, ConfigsAreWhatTheyClaim) {
  auto a = load_model_file(kFixtures + "llama_gqa_tied");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_TRUE(a.value()->config.tied_embeddings);
  EXPECT_EQ(a.value()->config.n_kv_heads, 2);
  EXPECT_EQ(a.value()->weights.find("output.weight"), nullptr);

  auto b = load_model_file(kFixtures + "llama_llama3_untied_sharded");
  ASSERT_TRUE(b.ok()) << b.message();
  const ModelConfig& c = b.value()->config;
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.q_dim(), 64);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::Llama3);
  EXPECT_FLOAT_EQ(c.rope_scaling.factor, 8.0f);
  EXPECT_EQ(c.rope_scaling.original_context, 64);
  EXPECT_FLOAT_EQ(c.rope_theta, 500000.0f);

  auto d = load_model_file(kFixtures + "llama_bias_mha");
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_TRUE(d.value()->config.attn_bias);
  EXPECT_TRUE(d.value()->config.mlp_bias);
  ASSERT_NE(d.value()->weights.find("blk.1.attn_output.bias"), nullptr);

  auto e = load_model_file(kFixtures + "llama_bf16");
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_EQ(e.value()->weights.find("blk.0.attn_q.weight")->dtype, DType::BF16);
  auto f = load_model_file(kFixtures + "llama_f16");
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f.value()->weights.find("token_embd.weight")->dtype, DType::F16);
}

TEST(HfModelFixtures, Llama3ScalingMatters) {
  // Without the scaling the llama3 fixture's logits move well past the tolerance: the test has teeth.
  const std::string dir = kFixtures + "llama_llama3_untied_sharded";
  auto r = load_model_file(dir);
  ASSERT_TRUE(r.ok()) << r.message();
  ModelFile& m = *r.value();
  m.config.rope_scaling.type = RopeScalingType::None;
  const std::vector<int> ids = read_ids(dir);
  EXPECT_GT(max_abs_diff(run_logits(m, ids, true), read_f32(dir + "/logits.f32")), 1e-2f);
}

// ---------------------------------------------------------------------------------------------------------------
// config.json

TEST(HfModelConfig, TinyConfigParses) {
  auto r = parse_hf_config(tiny_config().dump(), "config.json");
  ASSERT_TRUE(r.ok()) << r.message();
  const ModelConfig& c = r.value();
  EXPECT_EQ(c.dim, 8);
  EXPECT_EQ(c.hidden_dim, 12);
  EXPECT_EQ(c.n_layers, 1);
  EXPECT_EQ(c.n_heads, 2);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.vocab_size, 16);
  EXPECT_EQ(c.max_seq_len, 32);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::None);
}

TEST(HfModelConfig, DefaultsForOptionalKeys) {
  json j = tiny_config();
  for (const char* k : {"num_key_value_heads", "head_dim", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
                        "attention_bias", "mlp_bias", "hidden_act", "rope_scaling"})
    j.erase(k);
  j["num_key_value_heads"] = nullptr;
  auto r = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->n_kv_heads, 2);
  EXPECT_EQ(r->head_dim, 4);
  EXPECT_FLOAT_EQ(r->norm_eps, 1e-6f);
  EXPECT_FLOAT_EQ(r->rope_theta, 10000.0f);
  EXPECT_FALSE(r->tied_embeddings);
  EXPECT_FALSE(r->attn_bias);
}

TEST(HfModelConfig, MissingKeyIsNamed) {
  for (const char* k : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                        "vocab_size", "max_position_embeddings", "architectures"}) {
    json j = tiny_config();
    j.erase(k);
    expect_config_error(j, {std::string("missing key '") + k + "'"});
  }
}

TEST(HfModelConfig, WrongTypeNamesKeyAndExpectedType) {
  json j = tiny_config();
  j["hidden_size"] = "8";
  expect_config_error(j, {"key 'hidden_size'", "\"8\"", "a JSON string", "expected an integer"});
  j = tiny_config();
  j["num_attention_heads"] = 2.5;
  expect_config_error(j, {"key 'num_attention_heads'", "expected an integer"});
  j = tiny_config();
  j["rms_norm_eps"] = "small";
  expect_config_error(j, {"key 'rms_norm_eps'", "expected a number"});
  j = tiny_config();
  j["tie_word_embeddings"] = "yes";
  expect_config_error(j, {"key 'tie_word_embeddings'", "expected a boolean"});
  j = tiny_config();
  j["rope_scaling"] = 8;
  expect_config_error(j, {"key 'rope_scaling'", "expected an object or null"});
  j = tiny_config();
  j["architectures"] = "LlamaForCausalLM";
  expect_config_error(j, {"key 'architectures'", "expected a list of class names"});
}

TEST(HfModelConfig, UnsupportedArchitecture) {
  json j = tiny_config();
  j["architectures"] = {"GPT2LMHeadModel"};
  expect_config_error(j, {"architecture 'GPT2LMHeadModel' is not supported",
                          "LlamaForCausalLM, MistralForCausalLM"});
}

TEST(HfModelConfig, NotJsonOrNotAnObject) {
  auto r = parse_hf_config("{\"hidden_size\": ", "dir/config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("dir/config.json: not valid JSON"), std::string::npos) << r.message();
  expect_config_error(json::array({1, 2}), {"expected an object"});
}

TEST(HfModelConfig, UnsupportedActivationAndRopeType) {
  json j = tiny_config();
  j["hidden_act"] = "gelu";
  expect_config_error(j, {"'hidden_act'", "gelu", "supported: silu"});
  j = tiny_config();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_config_error(j, {"'rope_scaling.rope_type'", "yarn", "supported: default, llama3"});
  j = tiny_config();
  j["rope_parameters"] = {{"rope_type", "dynamic"}, {"rope_theta", 10000.0}};
  expect_config_error(j, {"'rope_parameters.rope_type'", "dynamic"});
}

TEST(HfModelConfig, Llama3ScalingBothSpellings) {
  // transformers 4: rope_theta at the top and rope_scaling with "rope_type" (or the older "type").
  json j = tiny_config();
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  auto a = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(a.ok()) << a.message();
  // transformers 5: both inside rope_parameters.
  json k = tiny_config();
  k.erase("rope_theta");
  k["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  auto b = parse_hf_config(k.dump(), "config.json");
  ASSERT_TRUE(b.ok()) << b.message();
  for (const ModelConfig* c : {&a.value(), &b.value()}) {
    EXPECT_EQ(c->rope_scaling.type, RopeScalingType::Llama3);
    EXPECT_FLOAT_EQ(c->rope_scaling.factor, 8.0f);
    EXPECT_FLOAT_EQ(c->rope_scaling.low_freq_factor, 1.0f);
    EXPECT_FLOAT_EQ(c->rope_scaling.high_freq_factor, 4.0f);
    EXPECT_EQ(c->rope_scaling.original_context, 8192);
    EXPECT_FLOAT_EQ(c->rope_theta, 500000.0f);
  }
}

TEST(HfModelConfig, Llama3ScalingKeysRequiredAndChecked) {
  json j = tiny_config();
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"original_max_position_embeddings", 64}};
  expect_config_error(j, {"missing key 'rope_scaling.high_freq_factor'"});
  j["rope_scaling"]["high_freq_factor"] = "4";
  expect_config_error(j, {"key 'rope_scaling.high_freq_factor'", "expected a number"});
  j["rope_scaling"]["high_freq_factor"] = 0.5;  // below low_freq_factor
  expect_config_error(j, {"low_freq_factor < high_freq_factor"});
}

TEST(HfModelConfig, MistralSlidingWindow) {
  json j = tiny_config();
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = nullptr;
  auto a = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_EQ(a->max_seq_len, 32);  // no window
  // A window shorter than the context caps the context: within the window, sliding-window attention is
  // plain causal attention, so every result tern gives stays exact.
  j["sliding_window"] = 16;
  auto b = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_EQ(b->max_seq_len, 16);
  j["sliding_window"] = 4096;
  auto c = parse_hf_config(j.dump(), "config.json");
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->max_seq_len, 32);
  j["sliding_window"] = "wide";
  expect_config_error(j, {"key 'sliding_window'", "expected an integer"});
}

TEST(HfModelConfig, RangeErrorsComeFromTheSharedChecks) {
  json j = tiny_config();
  j["num_key_value_heads"] = 3;
  expect_config_error(j, {"n_kv_heads"});
  j = tiny_config();
  j["num_hidden_layers"] = 0;
  expect_config_error(j, {"n_layers = 0"});
}

// ---------------------------------------------------------------------------------------------------------------
// Folder-level defects

TEST(HfModel, TinyCraftedFolderLoads) {
  const std::string d = write_folder(tiny_config(), tiny_tensors());
  auto r = load_model_file(d);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r.value()->weights.all().size(), 11u);
  EXPECT_NE(r.value()->weights.find("blk.0.ffn_down.weight"), nullptr);
  EXPECT_EQ(r.value()->path, d);
  EXPECT_EQ(std::string(model_format_name(r.value()->format)), "hugging face folder");
}

TEST(HfModel, MissingConfigJson) {
  const std::string d = fresh_dir();
  write_file(d + "/model.safetensors", safetensors_of(tiny_tensors()));
  expect_folder_error(d, {d + "/config.json", "cannot open"});
}

TEST(HfModel, ShapeMismatchNamesTheTensor) {
  auto ts = tiny_tensors();
  ts[4].shape = {8, 6};  // q_proj
  const std::string d = write_folder(tiny_config(), ts);
  expect_folder_error(d, {"'model.layers.0.self_attn.q_proj.weight'", "blk.0.attn_q.weight",
                          d + "/model.safetensors", "[8, 6]"});
}

TEST(HfModel, MissingTensorNamesItsHfName) {
  auto ts = tiny_tensors();
  ts.erase(ts.begin() + 9);  // up_proj
  expect_folder_error(write_folder(tiny_config(), ts), {"missing tensor 'model.layers.0.mlp.up_proj.weight'"});
  // Untied without lm_head.
  json j = tiny_config();
  j["tie_word_embeddings"] = false;
  expect_folder_error(write_folder(j, tiny_tensors(), "untied"), {"missing tensor 'lm_head.weight'"});
}

TEST(HfModel, UnexpectedTensorName) {
  auto ts = tiny_tensors();
  ts.push_back({"model.layers.0.self_attn.q_norm.weight", {4}});
  expect_folder_error(write_folder(tiny_config(), ts),
                      {"'model.layers.0.self_attn.q_norm.weight'", "not a weight of a Llama model"});
}

TEST(HfModel, LayerBeyondTheConfig) {
  auto ts = tiny_tensors();
  ts.push_back({"model.layers.1.input_layernorm.weight", {8}});
  expect_folder_error(write_folder(tiny_config(), ts), {"'model.layers.1.input_layernorm.weight'", "layer 1",
                                                        "num_hidden_layers 1"});
}

TEST(HfModel, BiasWithoutTheFlagAndFlagWithoutBias) {
  auto ts = tiny_tensors();
  ts.push_back({"model.layers.0.self_attn.q_proj.bias", {8}});
  expect_folder_error(write_folder(tiny_config(), ts), {"'model.layers.0.self_attn.q_proj.bias'",
                                                        "attention_bias false"});
  json j = tiny_config();
  j["mlp_bias"] = true;
  expect_folder_error(write_folder(j, tiny_tensors(), "flag"), {"missing tensor 'model.layers.0.mlp.gate_proj.bias'"});
}

TEST(HfModel, UnsupportedDtypeNamesTensorAndType) {
  auto ts = tiny_tensors();
  ts[1].dtype = "I64";  // model.norm.weight
  const std::string d = write_folder(tiny_config(), ts);
  expect_folder_error(d, {d + "/model.safetensors", "'model.norm.weight'", "dtype I64", "supported: F32, F16, BF16"});
}

TEST(HfModel, LyingHeaderIsReportedThroughTheLoader) {
  const std::string d = write_folder(tiny_config(), tiny_tensors());
  std::string bytes = read_file(d + "/model.safetensors");
  const uint64_t lie = bytes.size() * 2;
  std::memcpy(bytes.data(), &lie, 8);
  write_file(d + "/model.safetensors", bytes);
  expect_folder_error(d, {d + "/model.safetensors", "larger than the file"});
}

TEST(HfModel, MissingShardOfAFixture) {
  const std::string d = fresh_dir();
  fs::copy(kFixtures + "llama_bf16", d, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::remove(d + "/model-00002-of-00002.safetensors");
  expect_folder_error(d, {"model.safetensors.index.json", "shard 'model-00002-of-00002.safetensors'",
                          "does not exist"});
}

TEST(HfModel, BufferOfOldCheckpointsIsIgnoredAndTiedHeadSkipped) {
  auto ts = tiny_tensors();
  ts.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", {2}});
  ts.push_back({"lm_head.weight", {16, 8}});  // tied: the classifier is embed_tokens whatever the file holds
  auto r = load_model_file(write_folder(tiny_config(), ts));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r.value()->weights.find("output.weight"), nullptr);
}

TEST(HfModel, UnalignedTensorIsCopied) {
  // A header whose length is not a multiple of 4 leaves F32 data unaligned; the loader copies such tensors
  // rather than hand the backend a misaligned pointer.
  const std::string d = write_folder(tiny_config(), tiny_tensors());
  std::string bytes = read_file(d + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  std::string header = bytes.substr(8, n);
  while (!header.empty() && header.back() == ' ') header.pop_back();
  header += " ";  // odd length
  if (header.size() % 4 == 0) header += " ";
  const std::string rebuilt = le_u64(header.size()) + header + bytes.substr(8 + n);
  write_file(d + "/model.safetensors", rebuilt);
  auto r = load_model_file(d);
  ASSERT_TRUE(r.ok()) << r.message();
  const TensorView* t = r.value()->weights.find("blk.0.attn_q.weight");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 4, 0u);
  auto s = SafetensorsFile::open(d + "/model.safetensors");
  ASSERT_TRUE(s.ok());
  auto v = s->view(*s->find("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_EQ(std::memcmp(v->data, t->data, t->nbytes), 0);
}

TEST(HfModel, Llama3FrequenciesByHand) {
  // head_dim 16, theta 500000, factor 8, low 1, high 4, original context 64: the wavelength thresholds are
  // 64 / 4 = 16 and 64 / 1 = 64. Pair 0 (wavelen 2*pi) is kept, pair 1 (wavelen ~32.4) is blended,
  // pairs 2..7 (wavelen >= 167) are slowed by 8.
  ModelConfig c;
  c.head_dim = 16;
  c.rope_theta = 500000.0f;
  c.rope_scaling.type = RopeScalingType::Llama3;
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.low_freq_factor = 1.0f;
  c.rope_scaling.high_freq_factor = 4.0f;
  c.rope_scaling.original_context = 64;
  const std::vector<float> f = rope_frequencies(c);
  ASSERT_EQ(f.size(), 8u);
  auto base = [](int i) { return std::pow(500000.0, -2.0 * i / 16); };
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  const double w1 = 2 * std::numbers::pi / base(1);
  ASSERT_GT(w1, 16.0);
  ASSERT_LT(w1, 64.0);
  const double smooth = (64.0 / w1 - 1.0) / (4.0 - 1.0);
  EXPECT_FLOAT_EQ(f[1], static_cast<float>((1 - smooth) * base(1) / 8 + smooth * base(1)));
  for (int i = 2; i < 8; ++i) EXPECT_FLOAT_EQ(f[i], static_cast<float>(base(i) / 8)) << i;
  // The divisors GGUF stores reproduce the same table.
  ModelConfig g = c;
  g.rope_freq_factors = rope_llama3_factors(c);
  g.rope_scaling = RopeScaling{};
  EXPECT_EQ(rope_frequencies(g), f);
  EXPECT_FLOAT_EQ(g.rope_freq_factors[0], 1.0f);
  EXPECT_FLOAT_EQ(g.rope_freq_factors[7], 8.0f);
  // No scaling: the plain power series.
  c.rope_scaling = RopeScaling{};
  const std::vector<float> p = rope_frequencies(c);
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(p[i], static_cast<float>(base(i)));
}

// ---------------------------------------------------------------------------------------------------------------
// tern convert

TEST(Convert, PermutationIsLlamaCpps) {
  // llama.cpp: w.reshape(n_head, 2, hd/2, ...).swapaxes(1, 2): within each head, row 2j+s <- row s*hd/2 + j.
  const std::vector<uint8_t> src = {0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17};  // 2 heads x hd 8
  std::vector<uint8_t> dst(src.size());
  permute_half_to_adjacent(src.data(), dst.data(), 16, 1, 8);
  EXPECT_EQ(dst, (std::vector<uint8_t>{0, 4, 1, 5, 2, 6, 3, 7, 10, 14, 11, 15, 12, 16, 13, 17}));
  // Whole rows move together.
  const std::vector<uint8_t> rows = {0, 0, 1, 1, 2, 2, 3, 3};
  std::vector<uint8_t> out(8);
  permute_half_to_adjacent(rows.data(), out.data(), 4, 2, 4);
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 0, 2, 2, 1, 1, 3, 3}));
}

class ConvertFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(ConvertFixture, GgufGivesTheSameLogits) {
  const std::string dir = kFixtures + GetParam();
  auto hf = load_model_file(dir);
  ASSERT_TRUE(hf.ok()) << hf.message();
  const std::string out = fresh_dir() + "/model.gguf";
  auto st = convert_to_gguf(*hf.value(), out);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(st->tensors_permuted, 2 * hf.value()->config.n_layers * (hf.value()->config.attn_bias ? 2 : 1));
  EXPECT_EQ(st->tensors_converted, 0);

  auto g = load_model_file(out);
  ASSERT_TRUE(g.ok()) << g.message();
  const ModelConfig &a = hf.value()->config, &b = g.value()->config;
  EXPECT_EQ(b.rope_style, RopeStyle::Adjacent);
  EXPECT_EQ(b.dim, a.dim);
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.n_kv_heads, a.n_kv_heads);
  EXPECT_EQ(b.max_seq_len, a.max_seq_len);
  EXPECT_EQ(b.tied_embeddings, a.tied_embeddings);
  EXPECT_EQ(b.attn_bias, a.attn_bias);
  EXPECT_EQ(b.mlp_bias, a.mlp_bias);
  EXPECT_EQ(b.rope_theta, a.rope_theta);
  EXPECT_EQ(b.norm_eps, a.norm_eps);
  EXPECT_EQ(rope_frequencies(b), rope_frequencies(a));  // bit for bit, llama3 included
  for (const auto& [name, t] : hf.value()->weights.all()) {
    const TensorView* u = g.value()->weights.find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_EQ(u->dtype, t.dtype) << name;
    EXPECT_EQ(u->shape, t.shape) << name;
  }
  const std::vector<int> ids = read_ids(dir);
  const std::vector<float> la = run_logits(*hf.value(), ids, true), lb = run_logits(*g.value(), ids, true);
  // Only the order of the terms of each q.k dot product differs (the permuted head dimensions), in double.
  const float d = max_abs_diff(la, lb);
  EXPECT_LE(d, 1e-6f);
  EXPECT_LT(max_abs_diff(lb, read_f32(dir + "/logits.f32")), 1e-4f);
  std::printf("[ convert ] %-30s max abs diff GGUF vs folder: %.2e\n", GetParam(), d);
}

INSTANTIATE_TEST_SUITE_P(Convert, ConvertFixture, ::testing::ValuesIn(kFixtureNames),
                         [](const auto& p) { return std::string(p.param); });

TEST(Convert, MetadataAndRopeFreqsLikeLlamaCpp) {
  auto hf = load_model_file(kFixtures + "llama_llama3_untied_sharded");
  ASSERT_TRUE(hf.ok()) << hf.message();
  const std::string out = fresh_dir() + "/model.gguf";
  ASSERT_TRUE(convert_to_gguf(*hf.value(), out).ok());
  auto g = GgufFile::open(out);
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g->get_string("general.architecture").value(), "llama");
  EXPECT_EQ(g->get_uint("general.file_type").value(), 0u);  // all F32
  EXPECT_EQ(g->get_uint("llama.attention.key_length").value(), 16u);  // head_dim 16 != 32 / 4
  EXPECT_EQ(g->get_uint("llama.rope.dimension_count").value(), 16u);
  EXPECT_EQ(g->get_uint("llama.attention.head_count_kv").value(), 1u);
  EXPECT_EQ(g->get_uint("llama.context_length").value(), 512u);
  EXPECT_FLOAT_EQ(static_cast<float>(g->get_float("llama.rope.freq_base").value()), 500000.0f);
  EXPECT_EQ(g->find("llama.rope.scaling.type"), nullptr);  // llama.cpp stores llama3 as a tensor only
  ASSERT_GE(g->tensors().size(), 2u);
  EXPECT_EQ(g->tensors()[0].name, "rope_freqs.weight");  // llama.cpp writes generated tensors first
  EXPECT_EQ(g->tensors()[1].name, "token_embd.weight");
  bool found = false;
  for (const auto& t : g->tensors())
    if (t.name == "rope_freqs.weight") {
      found = true;
      EXPECT_EQ(t.ne, (std::vector<uint64_t>{8}));
      EXPECT_EQ(t.ggml_type, 0u);
    }
  EXPECT_TRUE(found);
}

TEST(Convert, HalfPrecisionTargets) {
  const std::string dir = kFixtures + "llama_bias_mha";
  auto hf = load_model_file(dir);
  ASSERT_TRUE(hf.ok()) << hf.message();
  const std::vector<int> ids = read_ids(dir);
  const std::vector<float> ref = run_logits(*hf.value(), ids, true);
  for (DType t : {DType::F16, DType::BF16}) {
    const std::string out = fresh_dir(std::string(dtype_name(t))) + "/model.gguf";
    auto st = convert_to_gguf(*hf.value(), out, ConvertOptions{t});
    ASSERT_TRUE(st.ok()) << st.message();
    auto g = load_model_file(out);
    ASSERT_TRUE(g.ok()) << g.message();
    EXPECT_EQ(g.value()->weights.find("blk.0.attn_q.weight")->dtype, t);
    EXPECT_EQ(g.value()->weights.find("token_embd.weight")->dtype, t);
    EXPECT_EQ(g.value()->weights.find("blk.0.attn_q.bias")->dtype, DType::F32);  // 1-D stays F32
    EXPECT_EQ(g.value()->weights.find("output_norm.weight")->dtype, DType::F32);
    auto gf = GgufFile::open(out);
    EXPECT_EQ(gf->get_uint("general.file_type").value(), t == DType::F16 ? 1u : 32u);
    // Rounding every weight to 11 (F16) or 8 (BF16) significant bits moves logits of ~10 by about 1e-3 and
    // 1e-2; a misplaced row would move them by whole units.
    const float d = max_abs_diff(run_logits(*g.value(), ids, true), ref);
    EXPECT_LT(d, t == DType::F16 ? 2e-2f : 2e-1f) << dtype_name(t);
    EXPECT_GT(d, 0.0f);
  }
  EXPECT_FALSE(convert_to_gguf(*hf.value(), fresh_dir("q8") + "/x.gguf", ConvertOptions{DType::Q8_0}).ok());
}

TEST(Convert, GgufToGgufKeepsEverything) {
  // An adjacent-order input is copied as is: no permutation, same metadata values, same logits bit for bit.
  TinyLlama t;
  t.n_kv_heads = 1;
  GgufBuilder b = t.builder();
  const std::string d = fresh_dir();
  write_file(d + "/in.gguf", b.build());
  auto in = load_model_file(d + "/in.gguf");
  ASSERT_TRUE(in.ok()) << in.message();
  auto st = convert_to_gguf(*in.value(), d + "/out.gguf");
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(st->tensors_permuted, 0);
  auto out = load_model_file(d + "/out.gguf");
  ASSERT_TRUE(out.ok()) << out.message();
  const std::vector<int> ids = {1, 5, 3, 9, 0, 15};
  EXPECT_EQ(run_logits(*in.value(), ids, true), run_logits(*out.value(), ids, true));
  EXPECT_FALSE(convert_to_gguf(*in.value(), d + "/in.gguf").ok());  // would overwrite the input
}

TEST(Convert, CommandLine) {
  const std::string out = fresh_dir() + "/m.gguf";
  auto r = run_tern({"convert", kFixtures + "mistral_gqa", out, "--type", "f16"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("4 with Q/K rows permuted"), std::string::npos) << r.out;
  auto g = load_model_file(out);
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g.value()->weights.find("blk.1.ffn_up.weight")->dtype, DType::F16);

  auto bad = run_tern({"convert", kFixtures + "mistral_gqa", out, "--type", "q4_0"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("tern convert: --type: 'q4_0' is not one of f32, f16, bf16"), std::string::npos) << bad.err;
  auto one = run_tern({"convert", kFixtures + "mistral_gqa"});
  EXPECT_EQ(one.exit_code, 1);
  EXPECT_NE(one.err.find("expected IN OUT"), std::string::npos) << one.err;
  auto missing = run_tern({"convert", temp_dir() + "/no_such_folder", out});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("no_such_folder"), std::string::npos) << missing.err;
}
