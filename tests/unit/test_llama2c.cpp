// llama2.c legacy checkpoints: a crafted tiny file whose every float encodes where it came from, so the
// loader's offsets can be checked value by value; then one test per header or size defect; then the real
// stories260K.bin.
#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstring>

#include "backend/backend.h"
#include "formats/model_file.h"
#include "model/llama.h"
#include "test_util.h"

using namespace tern;
using namespace tern_test;

namespace {

// A llama2.c checkpoint. Element i of array a (in file order) holds a * 1000 + i, exact in fp32 at these sizes.
struct Llama2cFile {
  int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = 16, seq = 4;
  bool separate_classifier = false;  // written as a negative vocab size

  int head_dim() const { return heads > 0 ? dim / heads : 0; }
  int kv_dim() const { return kv_heads * head_dim(); }

  // Element counts of the arrays in file order (after the 28-byte header).
  std::vector<size_t> array_sizes() const {
    const size_t L = layers, D = dim, H = hidden, KV = kv_dim(), V = vocab;
    const size_t freq = static_cast<size_t>(seq) * head_dim() / 2;
    std::vector<size_t> s = {V * D,     L * D,     L * D * D, L * KV * D, L * KV * D, L * D * D, L * D,
                             L * H * D, L * D * H, L * H * D, D,          freq,       freq};
    if (separate_classifier) s.push_back(V * D);
    return s;
  }
  // Byte offset of array `a` in the file.
  size_t offset_of(size_t a) const {
    size_t off = 28;
    auto s = array_sizes();
    for (size_t k = 0; k < a; ++k) off += s[k] * 4;
    return off;
  }
  static float value(size_t array, size_t i) { return static_cast<float>(array * 1000 + i); }

  std::string header() const {
    const int32_t h[7] = {dim, hidden, layers, heads, kv_heads, separate_classifier ? -vocab : vocab, seq};
    return std::string(reinterpret_cast<const char*>(h), sizeof h);
  }
  std::string build() const {
    std::string out = header();
    auto sizes = array_sizes();
    for (size_t a = 0; a < sizes.size(); ++a)
      for (size_t i = 0; i < sizes[a]; ++i) {
        const float f = value(a, i);
        out.append(reinterpret_cast<const char*>(&f), 4);
      }
    return out;
  }
};

// File-order array indices.
enum { kEmb = 0, kRmsAtt, kWq, kWk, kWv, kWo, kRmsFfn, kW1, kW2, kW3, kRmsFinal, kFreqRe, kFreqIm, kWcls };

std::string write_tmp(const std::string& bytes, const std::string& tag = "") {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string p = temp_dir() + "/" + info->test_suite_name() + "." + info->name() + tag + ".bin";
  ::unlink(p.c_str());  // not truncate-and-rewrite: see test_gguf.cpp
  write_file(p, bytes);
  return p;
}

void expect_load_error(const std::string& bytes, std::initializer_list<std::string> parts, const std::string& tag = "") {
  const std::string path = write_tmp(bytes, tag);
  auto r = load_model_file(path);
  ASSERT_FALSE(r.ok()) << "expected an error";
  const std::string& m = r.message();
  EXPECT_NE(m.find(path), std::string::npos) << "message does not name the file: " << m;
  for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "message lacks '" << p << "': " << m;
}

float at(const TensorView& t, int64_t r, int64_t c) {
  return static_cast<const float*>(t.data)[r * t.cols() + c];
}

}  // namespace

TEST(Llama2cLoad, TiedCheckpoint) {
  Llama2cFile f;
  const std::string path = write_tmp(f.build());
  auto r = load_model_file(path);
  ASSERT_TRUE(r.ok()) << r.message();
  const ModelFile& m = *r.value();
  EXPECT_EQ(m.format, ModelFormat::Llama2c);
  EXPECT_FALSE(m.gguf.has_value());
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.dim, 8);
  EXPECT_EQ(c.hidden_dim, 12);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_heads, 2);
  EXPECT_EQ(c.n_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.vocab_size, 16);
  EXPECT_EQ(c.max_seq_len, 4);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::Adjacent);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);

  // 1 embedding + 9 arrays x 2 layers + final norm; no classifier.
  EXPECT_EQ(m.weights.all().size(), 20u);
  EXPECT_EQ(m.weights.find("output.weight"), nullptr);

  const TensorView* emb = m.weights.find("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{16, 8}));
  EXPECT_EQ(emb->dtype, DType::F32);
  EXPECT_EQ(emb->nbytes, 16u * 8 * 4);
  EXPECT_EQ(at(*emb, 0, 0), Llama2cFile::value(kEmb, 0));
  EXPECT_EQ(at(*emb, 3, 5), Llama2cFile::value(kEmb, 3 * 8 + 5));
  EXPECT_EQ(at(*emb, 15, 7), Llama2cFile::value(kEmb, 127));

  // Layer 1 of each per-layer array starts one layer's slice into that array.
  const TensorView* k1 = m.weights.find("blk.1.attn_k.weight");
  ASSERT_NE(k1, nullptr);
  EXPECT_EQ(k1->shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(at(*k1, 2, 3), Llama2cFile::value(kWk, 32 + 2 * 8 + 3));
  const TensorView* q0 = m.weights.find("blk.0.attn_q.weight");
  EXPECT_EQ(at(*q0, 7, 7), Llama2cFile::value(kWq, 63));
  const TensorView* v1 = m.weights.find("blk.1.attn_v.weight");
  EXPECT_EQ(at(*v1, 0, 0), Llama2cFile::value(kWv, 32));
  const TensorView* o1 = m.weights.find("blk.1.attn_output.weight");
  EXPECT_EQ(at(*o1, 1, 2), Llama2cFile::value(kWo, 64 + 10));
  const TensorView* an1 = m.weights.find("blk.1.attn_norm.weight");
  EXPECT_EQ(an1->shape, (std::vector<int64_t>{8}));
  EXPECT_EQ(static_cast<const float*>(an1->data)[3], Llama2cFile::value(kRmsAtt, 8 + 3));
  const TensorView* fn0 = m.weights.find("blk.0.ffn_norm.weight");
  EXPECT_EQ(static_cast<const float*>(fn0->data)[0], Llama2cFile::value(kRmsFfn, 0));
  // w1 -> ffn_gate (hidden, dim), w2 -> ffn_down (dim, hidden), w3 -> ffn_up (hidden, dim).
  const TensorView* gate1 = m.weights.find("blk.1.ffn_gate.weight");
  EXPECT_EQ(gate1->shape, (std::vector<int64_t>{12, 8}));
  EXPECT_EQ(at(*gate1, 11, 7), Llama2cFile::value(kW1, 96 + 95));
  const TensorView* down1 = m.weights.find("blk.1.ffn_down.weight");
  EXPECT_EQ(down1->shape, (std::vector<int64_t>{8, 12}));
  EXPECT_EQ(at(*down1, 7, 11), Llama2cFile::value(kW2, 96 + 7 * 12 + 11));
  const TensorView* up0 = m.weights.find("blk.0.ffn_up.weight");
  EXPECT_EQ(at(*up0, 5, 1), Llama2cFile::value(kW3, 5 * 8 + 1));
  const TensorView* fin = m.weights.find("output_norm.weight");
  EXPECT_EQ(fin->shape, (std::vector<int64_t>{8}));
  EXPECT_EQ(static_cast<const float*>(fin->data)[5], Llama2cFile::value(kRmsFinal, 5));
}

TEST(Llama2cLoad, SeparateClassifierViaNegativeVocab) {
  Llama2cFile f;
  f.separate_classifier = true;
  const std::string path = write_tmp(f.build());
  auto r = load_model_file(path);
  ASSERT_TRUE(r.ok()) << r.message();
  const ModelFile& m = *r.value();
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_EQ(m.config.vocab_size, 16);
  const TensorView* out = m.weights.find("output.weight");
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->shape, (std::vector<int64_t>{16, 8}));
  // The classifier comes after the skipped freq_cis tables.
  EXPECT_EQ(at(*out, 0, 0), Llama2cFile::value(kWcls, 0));
  EXPECT_EQ(at(*out, 15, 7), Llama2cFile::value(kWcls, 127));
  EXPECT_EQ(m.weights.all().size(), 21u);
}

TEST(Llama2cLoad, MhaAndLoadLlama2cDirectly) {
  Llama2cFile f;
  f.kv_heads = 2;
  f.layers = 1;
  const std::string path = write_tmp(f.build());
  auto r = load_llama2c(path);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r.value()->config.n_kv_heads, 2);
  EXPECT_EQ(r.value()->weights.find("blk.0.attn_v.weight")->shape, (std::vector<int64_t>{8, 8}));
  EXPECT_TRUE(validate_llama_weights(r.value()->config, r.value()->weights, path).ok());
}

TEST(Llama2cLoad, RunsForward) {
  // A crafted checkpoint with small weights runs through the reference forward pass.
  Llama2cFile f;
  std::string bytes = f.build();
  // Replace the positional values by small ones so activations stay finite.
  for (size_t i = 28; i + 4 <= bytes.size(); i += 4) {
    const float x = static_cast<float>(((i * 2654435761u) >> 8) % 1000) / 1000.0f - 0.5f;
    std::memcpy(&bytes[i], &x, 4);
  }
  const std::string path = write_tmp(bytes);
  auto r = load_model_file(path);
  ASSERT_TRUE(r.ok()) << r.message();
  auto be = make_reference_backend();
  auto lm = LlamaModel::create(r.value()->config, r.value()->weights, *be, 4);
  ASSERT_TRUE(lm.ok()) << lm.message();
  const int ids[4] = {1, 2, 3, 15};
  std::vector<float> logits(4 * 16);
  ASSERT_TRUE(lm.value()->forward(ids, 4, 0, logits.data(), true).ok());
  for (float x : logits) EXPECT_TRUE(std::isfinite(x));
}

// ---------------------------------------------------------------------------------------------------------------
// Defects

TEST(Llama2cMalformed, TruncatedNamesTheTensor) {
  Llama2cFile f;
  const std::string bytes = f.build();
  // Cut inside layer 1's slice of w3 (ffn_up): layer 0 fits, layer 1 does not.
  const size_t cut = f.offset_of(kW3) + 96 * 4 + 10;
  expect_load_error(bytes.substr(0, cut), {"truncated", "tensor 'blk.1.ffn_up.weight'"}, "w3");
  // Cut inside the embedding table.
  expect_load_error(bytes.substr(0, 28 + 100), {"truncated", "tensor 'token_embd.weight'"}, "emb");
  // Cut right after the header.
  expect_load_error(bytes.substr(0, 28), {"truncated", "tensor 'token_embd.weight'"}, "hdr");
  // Cut inside the final norm.
  expect_load_error(bytes.substr(0, f.offset_of(kRmsFinal) + 4), {"tensor 'output_norm.weight'"}, "final");
}

TEST(Llama2cMalformed, TruncatedInFreqTables) {
  Llama2cFile f;
  const std::string bytes = f.build();
  expect_load_error(bytes.substr(0, bytes.size() - 4), {"truncated", "freq_cis"});
}

TEST(Llama2cMalformed, TruncatedClassifier) {
  Llama2cFile f;
  f.separate_classifier = true;
  const std::string bytes = f.build();
  expect_load_error(bytes.substr(0, bytes.size() - 4), {"truncated", "tensor 'output.weight'"});
}

TEST(Llama2cMalformed, TruncatedAtEveryByte) {
  Llama2cFile f;  // small, since the loop scales with the file size
  f.dim = 4;
  f.hidden = 6;
  f.layers = 1;
  f.vocab = 8;
  f.seq = 2;
  f.separate_classifier = true;
  const std::string bytes = f.build();
  const std::string path = temp_dir() + "/llama2c_truncate.bin";
  write_file(path, bytes);
  ASSERT_TRUE(load_model_file(path).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    ::unlink(path.c_str());
    write_file(path, bytes.substr(0, n));
    auto r = load_model_file(path);
    ASSERT_FALSE(r.ok()) << "truncated at " << n << " of " << bytes.size() << " was accepted";
    ASSERT_NE(r.message().find(path), std::string::npos) << r.message();
  }
}

TEST(Llama2cMalformed, TrailingBytes) {
  Llama2cFile f;
  const std::string bytes = f.build();
  expect_load_error(bytes + std::string(4, '\0'), {"4 unexpected bytes"}, "4");
  expect_load_error(bytes + "x", {"1 unexpected bytes"}, "1");
  // A tied file whose header lost the classifier flag: the classifier is left over at the end.
  Llama2cFile s;
  s.separate_classifier = true;
  std::string sb = s.build();
  const int32_t pos_vocab = 16;
  std::memcpy(&sb[20], &pos_vocab, 4);
  expect_load_error(sb, {"unexpected bytes"}, "flag");
}

TEST(Llama2cMalformed, SmallerThanHeader) {
  Llama2cFile f;
  const std::string bytes = f.build();
  expect_load_error(bytes.substr(0, 20), {"too small", "20 bytes"}, "20");
  expect_load_error(bytes.substr(0, 27), {"too small"}, "27");
  expect_load_error("", {"too small", "0 bytes"}, "0");
}

TEST(Llama2cMalformed, VersionedExportMagic) {
  Llama2cFile f;
  std::string bytes = f.build();
  bytes.replace(0, 4, std::string("\x32\x34\x6b\x61", 4));  // uint32 0x616b3432, little-endian
  expect_load_error(bytes, {"ak42", "not supported"});
}

TEST(Llama2cMalformed, NegativeDims) {
  struct Case {
    const char* what;
    int32_t Llama2cFile::*field;
    int32_t value;
    const char* expect;
  };
  const Case cases[] = {
      {"dim", &Llama2cFile::dim, -8, "dim = -8"},
      {"hidden", &Llama2cFile::hidden, -12, "hidden_dim = -12"},
      {"layers", &Llama2cFile::layers, -1, "n_layers = -1"},
      {"heads", &Llama2cFile::heads, -2, "n_heads = -2"},
      {"kv_heads", &Llama2cFile::kv_heads, -1, "n_kv_heads = -1"},
      {"seq", &Llama2cFile::seq, -4, "max_seq_len = -4"},
      {"layers0", &Llama2cFile::layers, 0, "n_layers = 0"},
      {"heads0", &Llama2cFile::heads, 0, "n_heads = 0"},
  };
  for (const auto& c : cases) {
    Llama2cFile f;
    // Build the valid body, then corrupt only the header, so the check must come from the header.
    std::string bytes = f.build();
    f.*c.field = c.value;
    bytes.replace(0, 28, f.header());
    expect_load_error(bytes, {c.expect}, c.what);
  }
}

TEST(Llama2cMalformed, VocabSizeIntMin) {
  Llama2cFile f;
  std::string bytes = f.build();
  const int32_t v = INT32_MIN;
  std::memcpy(&bytes[20], &v, 4);
  expect_load_error(bytes, {"vocab_size"});
}

TEST(Llama2cMalformed, KvHeadsAboveHeads) {
  Llama2cFile f;
  std::string bytes = f.build();
  f.kv_heads = 3;
  bytes.replace(0, 28, f.header());
  expect_load_error(bytes, {"n_kv_heads = 3"});
}

TEST(Llama2cMalformed, HeadsNotDividedByKvHeads) {
  Llama2cFile f;
  f.dim = 12;
  f.heads = 3;
  f.kv_heads = 2;
  expect_load_error(f.build(), {"n_heads 3", "n_kv_heads 2"});
}

TEST(Llama2cMalformed, DimNotMultipleOfHeads) {
  Llama2cFile f;
  std::string bytes = f.build();
  f.dim = 10;
  f.heads = 4;
  f.kv_heads = 4;
  bytes.replace(0, 28, f.header());
  expect_load_error(bytes, {"dim 10", "not a multiple of n_heads 4"});
}

TEST(Llama2cMalformed, HugeSeqLen) {
  Llama2cFile f;
  std::string bytes = f.build();
  f.seq = 1 << 30;
  bytes.replace(0, 28, f.header());
  expect_load_error(bytes, {"max_seq_len = 1073741824"}, "range");
  // In range, but its freq_cis tables would be far larger than the file.
  f.seq = 1 << 20;
  bytes.replace(0, 28, f.header());
  expect_load_error(bytes, {"freq_cis"}, "tables");
}

TEST(Llama2cMalformed, LargestDimsInRangeDoNotOverflow) {
  // Every value at the top of its range: sizes are computed in 64 bits and checked against the file.
  Llama2cFile f;
  std::string bytes = f.build();
  f.dim = 1 << 16;
  f.hidden = 1 << 18;
  f.layers = 1024;
  f.heads = 1024;
  f.kv_heads = 1024;
  f.vocab = 1 << 22;
  f.seq = 1 << 24;
  bytes.replace(0, 28, f.header());
  expect_load_error(bytes, {"tensor 'token_embd.weight'"});
}

TEST(Llama2cMalformed, RandomGarbageNeverCrashes) {
  // Headers of random int32s over a fixed body: an error or a valid model, never a crash.
  Llama2cFile f;
  const std::string body = f.build().substr(28);
  const std::string path = temp_dir() + "/llama2c_garbage.bin";
  uint64_t s = 99;
  auto next = [&]() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 32);
  };
  for (int iter = 0; iter < 300; ++iter) {
    int32_t h[7] = {8, 12, 2, 2, 1, 16, 4};
    // Small random values hit the consistency checks; full-range ones hit the range checks.
    for (int k = 0; k < 1 + static_cast<int>(next() % 3); ++k) {
      const uint32_t r = next();
      h[next() % 7] = r % 2 ? static_cast<int32_t>(r) : static_cast<int32_t>(r % 40) - 4;
    }
    ::unlink(path.c_str());
    write_file(path, std::string(reinterpret_cast<const char*>(h), 28) + body);
    auto r = load_model_file(path);
    if (!r.ok()) {
      EXPECT_NE(r.message().find(path), std::string::npos) << r.message();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The real file

TEST(Llama2cShared, Stories260K) {
  TERN_REQUIRE_SHARED(path, "models/stories260K/stories260K.bin");
  auto r = load_model_file(path);
  ASSERT_TRUE(r.ok()) << r.message();
  const ModelConfig& c = r.value()->config;
  EXPECT_EQ(r.value()->format, ModelFormat::Llama2c);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_seq_len, 512);
  EXPECT_TRUE(c.tied_embeddings);
  // Parameter count: embedding + 5 layers x (2 norms + q,o (64x64) + k,v (32x64) + 3 x (172x64)) + final norm.
  const int64_t per_layer = 2 * 64 + 2 * 64 * 64 + 2 * 32 * 64 + 3 * 172 * 64;
  EXPECT_EQ(r.value()->weights.total_params(), 512 * 64 + 5 * per_layer + 64);
}
