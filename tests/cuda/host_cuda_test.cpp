// Host-only tests of the CUDA backend: everything that needs no GPU (launch shapes, workspace sizes, the
// weight-type table, option parsing, error messages). They run wherever the tree is built with TERN_CUDA=ON.
#include <gtest/gtest.h>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/launch.h"
#include "core/quant.h"
#include "formats/weights.h"
#include "test_util.h"

namespace {

using namespace tern;
using namespace tern::cuda;

TEST(CudaHost, MatvecShapes) {
  // Llama-3-8B q projection, one token.
  LaunchShape s = matvec_shape(CudaMatmul::Naive, 4096, 1);
  EXPECT_EQ(s.block.x, 128u);
  EXPECT_EQ(s.grid.x, 32u);  // 4096 rows / 128 threads
  EXPECT_EQ(s.grid.y, 1u);
  s = matvec_shape(CudaMatmul::Warp, 4096, 3);
  EXPECT_EQ(s.block.x, 256u);  // 8 warps = 8 rows
  EXPECT_EQ(s.grid.x, 512u);
  EXPECT_EQ(s.grid.y, 3u);     // one grid row per token
  s = matvec_shape(CudaMatmul::Fast, 4096, 4);
  EXPECT_EQ(s.block.x, 128u);  // 4 warps = 4 rows
  EXPECT_EQ(s.grid.x, 1024u);
  EXPECT_EQ(s.grid.y, 1u);     // all tokens inside the kernel
  // Row counts that are not a multiple of the rows per block round up (stories260K: 64 and 172 rows).
  EXPECT_EQ(matvec_shape(CudaMatmul::Fast, 171, 1).grid.x, 43u);
  EXPECT_EQ(matvec_shape(CudaMatmul::Warp, 172, 1).grid.x, 22u);
  EXPECT_EQ(matvec_shape(CudaMatmul::Naive, 64, 1).grid.x, 1u);
  // A 128256-row classifier.
  EXPECT_EQ(matvec_shape(CudaMatmul::Fast, 128256, 1).grid.x, 32064u);
}

TEST(CudaHost, FastMatvecFallsBackWhereItsLoadsDontFit) {
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::F32, 4096, true), CudaMatmul::Fast);
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::F16, 4096, true), CudaMatmul::Fast);
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::F32, 172, true), CudaMatmul::Fast);   // 172 % 4 == 0
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::F16, 172, true), CudaMatmul::Warp);   // 172 % 8 != 0
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::BF16, 4100, true), CudaMatmul::Warp);
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::Q4_0, 64, true), CudaMatmul::Fast);
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::Q4_K, 256, true), CudaMatmul::Fast);
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::F32, 4096, false), CudaMatmul::Warp);  // x misaligned
  EXPECT_EQ(matvec_effective(CudaMatmul::Naive, DType::F16, 172, true), CudaMatmul::Naive);
  EXPECT_EQ(matvec_effective(CudaMatmul::Warp, DType::Q8_0, 4096, false), CudaMatmul::Warp);
  EXPECT_EQ(matvec_effective(CudaMatmul::Fast, DType::Q6_K, 4096, true), CudaMatmul::Warp);  // no fast Q6_K path
  EXPECT_EQ(quant_unit_elems(DType::Q4_K), 64);
  EXPECT_EQ(quant_unit_elems(DType::Q8_0), 32);
  EXPECT_EQ(vector_elems(DType::F32), 4);
  EXPECT_EQ(vector_elems(DType::BF16), 8);
  EXPECT_EQ(kMatvecMaxTokens, 4);
}

TEST(CudaHost, GemmWorkspace) {
  // F32 weights: plain SGEMM, no scratch.
  EXPECT_EQ(gemm_workspace_bytes(DType::F32, 4096, 4096, 512), 0u);
  // F16: the activations as f16.
  EXPECT_EQ(gemm_workspace_bytes(DType::F16, 4096, 4096, 512), 2u * 512 * 4096);
  // Quantized: activations plus one 64 MiB slab; a 128256 x 4096 classifier goes 8192 rows at a time.
  EXPECT_EQ(gemm_slab_rows(128256, 4096), 8192);
  EXPECT_EQ(gemm_workspace_bytes(DType::Q4_K, 128256, 4096, 64), 2u * 64 * 4096 + (size_t{64} << 20));
  // Small matrices take one slab of all their rows; sizes round up to 256 bytes.
  EXPECT_EQ(gemm_slab_rows(64, 64), 64);
  EXPECT_EQ(gemm_workspace_bytes(DType::Q8_0, 64, 64, 5), 768u + 8192u);
  EXPECT_EQ(gemm_slab_rows(10, 1 << 30), 1);
}

TEST(CudaHost, FlashAttentionShapes) {
  // Llama-3-8B prefill of 100 tokens: 32 query heads over 8 kv heads, groups of 4.
  LaunchShape s = flash_shape(100, 32, 8, 128);
  EXPECT_EQ(s.block.x, 128u);
  EXPECT_EQ(s.grid.x, 25u);  // 100 positions x 4 heads = 400 rows / 16
  EXPECT_EQ(s.grid.y, 8u);   // one per kv head: K/V tiles shared by the group
  EXPECT_EQ(s.smem, 4u * (16 * 128 + 32 * 129 + 32 * 128));
  EXPECT_LT(s.smem, 48u * 1024);  // head_dim 128 fits the default limit
  // head_dim 256 needs the opt-in (init_attention_kernels raises the limit to this).
  EXPECT_EQ(flash_shape(2, 8, 8, 256).smem, 4u * (16 * 256 + 32 * 257 + 32 * 256));
  // stories260K: 8 heads of 8.
  s = flash_shape(7, 8, 4, 8);
  EXPECT_EQ(s.grid.x, 1u);
  EXPECT_EQ(s.grid.y, 4u);
  // Tiles walked: keys 0 .. pos0 + last token.
  EXPECT_EQ(flash_tiles(0, 0), 1);
  EXPECT_EQ(flash_tiles(0, 31), 1);
  EXPECT_EQ(flash_tiles(0, 32), 2);
  EXPECT_EQ(flash_tiles(100, 27), 4);  // 128 keys
  EXPECT_EQ(flash_tiles(100, 28), 5);
}

TEST(CudaHost, SplitKDecode) {
  // Short contexts: one split (keys < 2 * kMinKeysPerSplit ... still 1 when heads fill the GPU).
  EXPECT_EQ(decode_splits(1, 32, 132), 1);
  EXPECT_EQ(decode_splits(64, 32, 132), 1);
  // 32 heads on 132 SMs want ceil(264 / 32) = 9 splits once the context has 9 * 64 keys.
  EXPECT_EQ(decode_splits(65, 32, 132), 2);
  EXPECT_EQ(decode_splits(8192, 32, 132), 9);
  // Few heads, long context: capped at kMaxSplits.
  EXPECT_EQ(decode_splits(1 << 20, 1, 132), kMaxSplits);
  EXPECT_EQ(decode_splits(1000, 1, 132), 16);  // ceil(1000 / 64)
  EXPECT_EQ(decode_splits(1000, 512, 132), 1);
  LaunchShape s = decode_shape(32, 9, 128);
  EXPECT_EQ(s.grid.x, 32u);
  EXPECT_EQ(s.grid.y, 9u);
  EXPECT_EQ(s.block.x, 128u);
  EXPECT_EQ(s.smem, 4u * 4 * 130);
  EXPECT_EQ(decode_workspace_bytes(32, 128), 4u * 32 * 64 * 130);
}

TEST(CudaHost, ElementwiseShapes) {
  EXPECT_EQ(elementwise_shape(1).grid.x, 1u);
  EXPECT_EQ(elementwise_shape(256).grid.x, 1u);
  EXPECT_EQ(elementwise_shape(257).grid.x, 2u);
  EXPECT_EQ(elementwise_shape(64 * 14336).grid.x, 3584u);
  EXPECT_EQ(elementwise_shape(0).grid.x, 1u);
}

TEST(CudaHost, WeightTypeTable) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q6_K})
    EXPECT_TRUE(cuda_supports_weight(t)) << dtype_name(t);
  for (DType t : {DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q5_K, DType::Q8_K, DType::I32})
    EXPECT_FALSE(cuda_supports_weight(t)) << dtype_name(t);
  EXPECT_EQ(cuda_weight_types_text(), "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K");
}

TEST(CudaHost, UnsupportedWeightTypeNamesTheTensor) {
  std::vector<uint8_t> bytes(row_bytes(DType::Q5_K, 256), 0);
  WeightStore w;
  TensorView ok;
  ok.name = "output_norm.weight";
  ok.dtype = DType::F32;
  ok.shape = {4};
  float four[4] = {};
  ok.data = four;
  ok.nbytes = sizeof(four);
  w.add(ok);
  EXPECT_TRUE(cuda_check_weights(w).ok());
  TensorView bad;
  bad.name = "blk.0.ffn_down.weight";
  bad.dtype = DType::Q5_K;
  bad.shape = {1, 256};
  bad.data = bytes.data();
  bad.nbytes = bytes.size();
  w.add(bad);
  const Status s = cuda_check_weights(w);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "tensor 'blk.0.ffn_down.weight' has type Q5_K, which the cuda backend does not support (supported: F32, "
            "F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)");
}

TEST(CudaHost, MatmulOption) {
  for (const char* name : {"naive", "warp", "fast", "cublas"}) {
    auto m = parse_cuda_matmul(name);
    ASSERT_TRUE(m.ok()) << name;
    EXPECT_STREQ(cuda_matmul_name(m.value()), name);
  }
  auto bad = parse_cuda_matmul("tiled");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "unknown matmul kernel 'tiled' (choices: naive, warp, fast, cublas)");
  EXPECT_EQ(CudaOptions{}.matmul, CudaMatmul::Fast);
}

// Without a usable device (this is what CI and GPU-less machines see) creating the backend fails with one
// line that says why; with one, it works.
TEST(CudaHost, NoDeviceIsAOneLineError) {
  const Status dev = cuda_device_status();
  auto be = make_backend("cuda", 0);
  if (dev.ok()) {
    EXPECT_TRUE(be.ok()) << be.message();
    return;
  }
  ASSERT_FALSE(be.ok());
  EXPECT_EQ(be.message(), dev.message());
  EXPECT_EQ(be.message().find('\n'), std::string::npos);
  EXPECT_EQ(be.message().rfind("cuda backend: ", 0), 0u) << be.message();
  auto direct = make_cuda_backend();
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.message(), dev.message());
}

TEST(CudaHost, UnknownBackendListsCuda) {
  auto be = make_backend("tpu", 0);
  ASSERT_FALSE(be.ok());
  EXPECT_EQ(be.message(), "unknown backend 'tpu' (choices: cpu, reference, cuda)");
}

// `tern run --backend cuda` on a machine without a GPU: one line on stderr, exit code 1, no crash.
TEST(CudaHost, CliWithoutDeviceFailsCleanly) {
  if (cuda_device_status().ok()) GTEST_SKIP() << "a CUDA device is present";
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  auto r = tern_test::run_tern({"run", "-m", bin, "-z", tok, "--backend", "cuda", "-n", "4"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // exactly one line
  EXPECT_NE(r.err.find("cuda backend: "), std::string::npos) << r.err;
}

}  // namespace
