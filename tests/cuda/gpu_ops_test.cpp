// Every CUDA op against the reference backend on seeded random inputs (ctest label `gpu`). Each test skips
// when no CUDA device is usable. Tolerances are stated, with their reason, next to each comparison.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/quant.h"
#include "formats/weights.h"

namespace {

using namespace tern;

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status dev = cuda_device_status();
    if (!dev.ok()) GTEST_SKIP() << dev.message();
    auto be = make_cuda_backend();
    ASSERT_TRUE(be.ok()) << be.message();
    gpu_ = std::move(be.value());
    ref_ = make_reference_backend();
  }

  std::vector<float> random(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }
  // A device copy of host floats, kept alive by the fixture.
  float* upload(const std::vector<float>& v) {
    auto b = BackendBuffer::make(*gpu_, v.size() * sizeof(float));
    EXPECT_TRUE(b.ok()) << b.message();
    gpu_->copy_from_host(b->get(), v.data(), v.size() * sizeof(float));
    bufs_.push_back(std::move(b.value()));
    return bufs_.back().f32();
  }
  float* device_zeros(size_t n) { return upload(std::vector<float>(n, 0.0f)); }
  std::vector<float> download(const float* p, size_t n) {
    std::vector<float> v(n);
    const Status s = gpu_->copy_to_host(v.data(), p, n * sizeof(float));
    EXPECT_TRUE(s.ok()) << s.message();
    return v;
  }
  // A weight of type t holding `values` (quantized with quantize_row), registered with the GPU backend.
  const TensorView& weight(DType t, std::vector<int64_t> shape, const std::vector<float>& values) {
    TensorView tv;
    tv.name = "w" + std::to_string(store_.all().size());
    tv.dtype = t;
    tv.shape = shape;
    const int64_t cols = shape.back(), rows = static_cast<int64_t>(values.size()) / cols;
    std::vector<uint8_t> bytes(row_bytes(t, static_cast<uint64_t>(cols)) * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t, values.data() + r * cols, bytes.data() + r * row_bytes(t, static_cast<uint64_t>(cols)), cols);
    tv.data = bytes.data();
    tv.nbytes = bytes.size();
    store_.keep_alive(std::move(bytes));  // the vector's heap block moves with it: tv.data stays valid
    store_.add(tv);
    const Status s = gpu_->prepare(store_);
    EXPECT_TRUE(s.ok()) << s.message();
    return *store_.find(tv.name);
  }

  std::mt19937 rng_{1234};
  std::unique_ptr<Backend> gpu_, ref_;
  std::vector<BackendBuffer> bufs_;
  WeightStore store_;
};

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, float tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1.0f + std::fabs(want[i]))) << what << " at " << i;
}

const DType kWeightTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K};

TEST_F(CudaOps, Embedding) {
  for (DType t : kWeightTypes) {
    const TensorView& table = weight(t, {50, 256}, random(50 * 256));
    const int tokens[] = {3, 0, 49, 3, 17};
    std::vector<float> want(5 * 256);
    ref_->embedding(table, tokens, 5, want.data());
    float* out = device_zeros(5 * 256);
    gpu_->embedding(table, tokens, 5, out);
    // Same dequantization formula in fp32 on both sides; only the order of the Q4_K scale products differs.
    expect_near_all(download(out, 5 * 256), want, 1e-6f, dtype_name(t).data());
  }
}

TEST_F(CudaOps, RmsNormAddSwigluBias) {
  const int n = 3, d = 576;
  const std::vector<float> x = random(n * d, 3.0f), y = random(n * d);
  const TensorView& w = weight(DType::F32, {d}, random(d));
  const TensorView& b = weight(DType::F16, {d}, random(d));
  std::vector<float> want(n * d);
  ref_->rmsnorm(x.data(), w, 1e-5f, n, want.data());
  float* gx = upload(x);
  float* out = device_zeros(n * d);
  gpu_->rmsnorm(gx, w, 1e-5f, n, out);
  // fp32 sum of squares (the reference sums in double): relative error ~ d * 2^-24.
  expect_near_all(download(out, n * d), want, 1e-5f, "rmsnorm");

  std::vector<float> xr = x;
  ref_->add(xr.data(), y.data(), n * d);
  gpu_->add(gx, upload(y), n * d);
  expect_near_all(download(gx, n * d), xr, 0.0f, "add");  // one correctly rounded fp32 add: exact

  ref_->add_bias(xr.data(), b, n);
  gpu_->add_bias(gx, b, n);
  expect_near_all(download(gx, n * d), xr, 0.0f, "add_bias");

  std::vector<float> g = random(n * d, 4.0f), u = random(n * d);
  float* gg = upload(g);
  ref_->swiglu(g.data(), u.data(), n * d);
  gpu_->swiglu(gg, upload(u), n * d);
  expect_near_all(download(gg, n * d), g, 1e-6f, "swiglu");  // expf within 2 ulp
}

TEST_F(CudaOps, RopeBothStyles) {
  const int n = 4, heads = 3, hd = 64, pos0 = 4000;
  std::vector<float> freqs(hd / 2);
  for (int i = 0; i < hd / 2; ++i) freqs[i] = std::pow(10000.0f, -2.0f * i / hd);
  float* gf = upload(freqs);
  for (RopeStyle style : {RopeStyle::Adjacent, RopeStyle::HalfSplit}) {
    std::vector<float> x = random(n * heads * hd);
    float* gx = upload(x);
    ref_->rope(x.data(), n, heads, hd, pos0, freqs.data(), style);
    gpu_->rope(gx, n, heads, hd, pos0, gf, style);
    // The angle is formed and turned in double on both sides: only the final fp32 products differ.
    expect_near_all(download(gx, n * heads * hd), x, 1e-6f, rope_style_name(style));
  }
}

TEST_F(CudaOps, MatmulEveryTypeAndKernel) {
  const int n_out = 70, n_in = 512;  // 70 rows: a partial block for every kernel
  for (DType t : kWeightTypes) {
    const std::vector<float> wv = random(static_cast<size_t>(n_out) * n_in);
    const TensorView& w = weight(t, {n_out, n_in}, wv);
    for (CudaMatmul k : {CudaMatmul::Naive, CudaMatmul::Warp, CudaMatmul::Fast, CudaMatmul::Cublas}) {
      CudaOptions o;
      o.matmul = k;
      auto be = make_cuda_backend(o);
      ASSERT_TRUE(be.ok()) << be.message();
      ASSERT_TRUE(be.value()->prepare(store_).ok());
      for (int n_tokens : {1, 3, 9}) {  // 9 > kMatvecMaxTokens: cuBLAS whatever the kernel
        const std::vector<float> x = random(static_cast<size_t>(n_tokens) * n_in);
        std::vector<float> want(static_cast<size_t>(n_tokens) * n_out);
        ref_->matmul(w, x.data(), n_tokens, want.data());
        auto gx = BackendBuffer::make(*be.value(), x.size() * 4);
        auto go = BackendBuffer::make(*be.value(), want.size() * 4);
        be.value()->copy_from_host(gx->get(), x.data(), x.size() * 4);
        be.value()->matmul(w, gx->f32(), n_tokens, go->f32());
        std::vector<float> got(want.size());
        ASSERT_TRUE(be.value()->copy_to_host(got.data(), go->get(), got.size() * 4).ok());
        // Error scale: sum_i |w_i x_i| of a row ~ n_in * E|w||x| = 512 * 2/pi. fp32 accumulation (matvec,
        // SGEMM) stays below 1e-5 of it; the cuBLAS path for non-F32 weights rounds x (and dequantized
        // weights) to f16 (2^-11 relative each) or bf16 (2^-8), so 3e-3 and 1.5e-2 of it.
        const bool gemm = k == CudaMatmul::Cublas || n_tokens > 4;
        const float rel = !gemm || t == DType::F32 ? 1e-5f : t == DType::BF16 ? 1.5e-2f : 3e-3f;
        const float tol = rel * n_in * 0.64f;
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], tol) << dtype_name(t) << " " << cuda_matmul_name(k) << " n_tokens " << n_tokens
                                            << " at " << i;
      }
    }
  }
}

// kv_store + attention through a shuffled block table, prefill (flash) and decode (split-K), f32 and f16 KV.
TEST_F(CudaOps, AttentionPagedGqa) {
  struct Case {
    int n_heads, n_kv_heads, head_dim, pos0, n_tokens;
  };
  const Case cases[] = {{8, 2, 64, 0, 37}, {8, 2, 64, 5, 37}, {4, 4, 128, 1500, 1}, {8, 4, 8, 0, 9},
                        {8, 4, 8, 200, 1}, {2, 1, 256, 3, 20}, {32, 8, 128, 4095, 1}};
  for (DType kvt : {DType::F32, DType::F16}) {
    for (const Case& c : cases) {
      const int block = 16, n_pos = c.pos0 + c.n_tokens, n_blocks = (n_pos + block - 1) / block + 3;
      const int64_t row = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
      const int64_t rb = static_cast<int64_t>(row_bytes(kvt, row));
      std::vector<int32_t> table(n_blocks);
      std::iota(table.begin(), table.end(), 0);
      std::shuffle(table.begin(), table.end(), rng_);
      // Host cache for the reference, device cache for the GPU, filled with the same keys and values.
      std::vector<uint8_t> hk(static_cast<size_t>(n_blocks * block * rb)), hv(hk.size());
      KvView hview{kvt, hk.data(), hv.data(), block * rb, row, rb, block, table.data()};
      auto dk = BackendBuffer::make(*gpu_, hk.size());
      auto dv = BackendBuffer::make(*gpu_, hv.size());
      auto dt = BackendBuffer::make(*gpu_, table.size() * 4);
      gpu_->copy_from_host(dt->get(), table.data(), table.size() * 4);
      KvView dview{kvt, dk->u8(), dv->u8(), block * rb, row, rb, block, static_cast<const int32_t*>(dt->get())};
      const std::vector<float> k = random(static_cast<size_t>(n_pos) * row), v = random(static_cast<size_t>(n_pos) * row);
      ref_->kv_store(hview, 0, n_pos, k.data(), v.data());
      gpu_->kv_store(dview, 0, n_pos, upload(k), upload(v));
      std::vector<uint8_t> back(hk.size());
      ASSERT_TRUE(gpu_->copy_to_host(back.data(), dk->get(), back.size()).ok());
      // Same conversion (fp32 -> f16 round to nearest even) on both sides: the stored bytes agree exactly.
      for (int p = 0; p < n_pos; ++p)
        ASSERT_EQ(0, std::memcmp(back.data() + (hview.k_row(p) - hk.data()), hview.k_row(p), rb)) << "row " << p;

      const size_t qn = static_cast<size_t>(c.n_tokens) * c.n_heads * c.head_dim;
      const std::vector<float> q = random(qn);
      std::vector<float> want(qn);
      ref_->attention(q.data(), hview, c.n_tokens, c.pos0, c.n_heads, c.n_kv_heads, c.head_dim, want.data());
      float* out = device_zeros(qn);
      gpu_->attention(upload(q), dview, c.n_tokens, c.pos0, c.n_heads, c.n_kv_heads, c.head_dim, out);
      // Outputs are convex combinations of unit-variance values; fp32 scores and sums (the reference uses
      // double) leave errors ~1e-6; 2e-5 absolute leaves room for 4096-key softmaxes.
      const std::vector<float> got = download(out, qn);
      for (size_t i = 0; i < qn; ++i)
        ASSERT_NEAR(got[i], want[i], 2e-5f) << dtype_name(kvt) << " heads " << c.n_heads << "/" << c.n_kv_heads << " hd "
                                            << c.head_dim << " pos0 " << c.pos0 << " n " << c.n_tokens << " at " << i;
    }
  }
}

// Q6_K cannot be produced by quantize_row: random code bytes with a small f16 scale in every block.
TEST_F(CudaOps, Q6KFromRandomBytes) {
  const int n_out = 33, n_in = 512;
  const size_t rb = row_bytes(DType::Q6_K, n_in);
  std::vector<uint8_t> bytes(rb * n_out);
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(byte(rng_));
  const uint16_t d = f32_to_f16(0.002f);
  for (size_t off = 0; off < bytes.size(); off += sizeof(BlockQ6_K)) std::memcpy(&bytes[off + 208], &d, 2);
  TensorView tv;
  tv.name = "q6k";
  tv.dtype = DType::Q6_K;
  tv.shape = {n_out, n_in};
  tv.data = bytes.data();
  tv.nbytes = bytes.size();
  store_.add(tv);
  ASSERT_TRUE(gpu_->prepare(store_).ok());
  const TensorView& w = *store_.find("q6k");
  for (int n_tokens : {1, 9}) {  // warp kernel, then dequantize + cuBLAS
    const std::vector<float> x = random(static_cast<size_t>(n_tokens) * n_in);
    std::vector<float> want(static_cast<size_t>(n_tokens) * n_out);
    ref_->matmul(w, x.data(), n_tokens, want.data());
    float* out = device_zeros(want.size());
    gpu_->matmul(w, upload(x), n_tokens, out);
    // Weights up to 0.002 * 127 * 32 ~ 8: |w x| sums ~ 512 * 3; fp32 (1e-5) or f16 rounding (3e-3) of that.
    const float tol = (n_tokens == 1 ? 1e-5f : 3e-3f) * n_in * 3.0f;
    const std::vector<float> got = download(out, want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "n_tokens " << n_tokens << " at " << i;
  }
  const int tokens[] = {0, 32, 7};
  std::vector<float> want(3 * n_in);
  ref_->embedding(w, tokens, 3, want.data());
  float* out = device_zeros(want.size());
  gpu_->embedding(w, tokens, 3, out);
  expect_near_all(download(out, want.size()), want, 1e-6f, "Q6_K embedding");
}

TEST_F(CudaOps, Q8KvCacheIsRejected) {
  EXPECT_FALSE(gpu_->supports_kv(DType::Q8_0));
  EXPECT_TRUE(gpu_->supports_kv(DType::F16));
}

TEST_F(CudaOps, OutOfMemorySaysHowMuch) {
  auto b = gpu_->alloc(size_t{1} << 50);  // 1 PiB
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.message().find("out of device memory"), std::string::npos) << b.message();
  EXPECT_NE(b.message().find("1073741824 MiB needed"), std::string::npos) << b.message();
  EXPECT_TRUE(gpu_->synchronize().ok());  // the failed allocation leaves the backend usable
}

}  // namespace
