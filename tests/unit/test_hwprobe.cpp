// hwprobe (perf/hwprobe.h) in its --quick mode: plausible figures, the JSON round trip, and the host
// Hardware built from it; the matmul kernels' section of the file, and files written before it existed; the
// probe of a model's own matrix shapes (perf/kernel_probe.h).
#include <gtest/gtest.h>

#include "perf/estimator.h"
#include "perf/hwprobe.h"
#include "perf/model_spec.h"
#include "test_util.h"

namespace {

using namespace tern::perf;
using tern::DType;

const HwprobeResult& quick_probe() {
  static const HwprobeResult r = [] {
    HwprobeOptions o;
    o.quick = true;
    auto p = run_hwprobe(o);
    EXPECT_TRUE(p.ok()) << p.message();
    return p.ok() ? p.value() : HwprobeResult();
  }();
  return r;
}

TEST(Hwprobe, QuickProbeIsPlausible) {
  const HwprobeResult& r = quick_probe();
  EXPECT_GE(r.logical_cpus, 1);
  EXPECT_GE(r.physical_cores, 1);
  EXPECT_GE(r.threads, 1);
  EXPECT_GT(r.mem_total_bytes, int64_t{1} << 28);
  // Anything from a slow sanitizer build to a big server: 100 MB/s .. 10 TB/s.
  for (double bw : {r.read_bw, r.read_bw_one_thread, r.copy_bw, r.triad_bw}) {
    EXPECT_GT(bw, 1e8);
    EXPECT_LT(bw, 1e13);
  }
  ASSERT_FALSE(r.peaks.empty());
  EXPECT_EQ(r.peaks.front().path, "scalar_f32");  // always there
  for (const PeakPath& p : r.peaks) {
    EXPECT_GT(p.one_thread, 1e7) << p.path;
    EXPECT_GT(p.all_threads, 0) << p.path;
  }
  EXPECT_GT(r.best_peak("f32"), 0);
  // tern's matmul on every probed type the CPU backend has (F32 on any machine). Only sanity bounds: the
  // figures depend on the machine and its load.
  ASSERT_FALSE(r.matmul.empty());
  EXPECT_EQ(r.matmul.front().weights, tern::DType::F32);
  for (const MatmulCeiling& m : r.matmul) {
    EXPECT_GT(m.gemm_ops_per_s, 1e6) << tern::dtype_name(m.weights);
    EXPECT_LT(m.gemm_ops_per_s, 1e16) << tern::dtype_name(m.weights);
    EXPECT_GT(m.gemv_bytes_per_s, 1e6) << tern::dtype_name(m.weights);
    EXPECT_LT(m.gemv_bytes_per_s, 1e13) << tern::dtype_name(m.weights);
    // The run of smaller matrices at each size below the one large matrix, which comes last.
    ASSERT_GE(m.gemv_by_size.size(), 2u) << tern::dtype_name(m.weights);
    EXPECT_DOUBLE_EQ(m.gemv_by_size.back().bytes_per_s, m.gemv_bytes_per_s);
    for (size_t i = 1; i < m.gemv_by_size.size(); ++i)
      EXPECT_GT(m.gemv_by_size[i].matrix_bytes, m.gemv_by_size[i - 1].matrix_bytes);
    for (const SizedRate& z : m.gemv_by_size) EXPECT_GT(z.bytes_per_s, 1e6) << tern::dtype_name(m.weights);
  }
  EXPECT_GT(r.matmul_shape.gemv_bytes, 0);
  EXPECT_LT(r.seconds, 30);
}

TEST(Hwprobe, JsonRoundTripAndHardware) {
  const HwprobeResult& r = quick_probe();
  auto back = hwprobe_from_json(hwprobe_to_json(r), "mem");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->cpu_model, r.cpu_model);
  EXPECT_EQ(back->caches.size(), r.caches.size());
  EXPECT_DOUBLE_EQ(back->read_bw, r.read_bw);
  ASSERT_EQ(back->peaks.size(), r.peaks.size());
  EXPECT_DOUBLE_EQ(back->peaks.back().all_threads, r.peaks.back().all_threads);
  ASSERT_EQ(back->matmul.size(), r.matmul.size());
  for (size_t i = 0; i < r.matmul.size(); ++i) {
    EXPECT_EQ(back->matmul[i].weights, r.matmul[i].weights);
    EXPECT_DOUBLE_EQ(back->matmul[i].gemm_ops_per_s, r.matmul[i].gemm_ops_per_s);
    EXPECT_DOUBLE_EQ(back->matmul[i].gemv_bytes_per_s, r.matmul[i].gemv_bytes_per_s);
  }
  EXPECT_EQ(back->matmul_shape.gemm_tokens, r.matmul_shape.gemm_tokens);
  EXPECT_EQ(back->matmul_shape.gemv_bytes, r.matmul_shape.gemv_bytes);

  const std::string path = tern_test::temp_dir() + "/sub/dir/hwprobe.json";
  ASSERT_TRUE(save_hwprobe(r, path).ok());
  auto loaded = load_hwprobe(path);
  ASSERT_TRUE(loaded.ok()) << loaded.message();

  const Hardware hw = hardware_from_hwprobe(loaded.value(), path);
  EXPECT_EQ(hw.key, "host");
  EXPECT_FALSE(hw.gpu);
  EXPECT_DOUBLE_EQ(hw.mem_bandwidth, r.read_bw);
  EXPECT_DOUBLE_EQ(hw.peak_flops(Compute::F32), r.best_peak("f32"));
  EXPECT_EQ(hw.has(Compute::INT8), r.best_peak("int8") > 0);
  EXPECT_NE(hw.source.find(path), std::string::npos);
  EXPECT_EQ(hw.matmul_ceilings.size(), r.matmul.size());
  ASSERT_NE(hw.matmul_ceiling(tern::DType::F32), nullptr);
  EXPECT_EQ(hw.matmul_ceiling(tern::DType::Q5_1), nullptr);  // not probed
  const std::string text = format_hwprobe(r);
  EXPECT_NE(text.find("ridge point"), std::string::npos);
  EXPECT_NE(text.find("tern's matmul kernels"), std::string::npos) << text;
}

// A file with the bandwidth and peaks of a machine and, when `matmul` is given, the matmul_kernels section.
std::string hwprobe_text(const std::string& matmul) {
  return R"({"tern_hwprobe": 1, "date": "2025-01-01T00:00:00Z", "cpu": "Test CPU", "threads": 2,
    "mem_total_bytes": 25000000000, "bandwidth": {"read_bytes_per_s": 40e9},
    "peaks": [{"path": "avx512_fma_f32", "dtype": "f32", "all_threads_per_s": 200e9},
              {"path": "avx512_vnni_int8", "dtype": "int8", "all_threads_per_s": 800e9}])" +
         (matmul.empty() ? std::string() : ", " + matmul) + "}";
}

TEST(Hwprobe, ParsesTheMatmulKernelsSection) {
  auto r = hwprobe_from_json(hwprobe_text(R"("matmul_kernels": {"backend": "cpu", "threads": 2, "rounds": 10,
      "gemm": {"rows": 1024, "cols": 2048, "tokens": 128},
      "gemv": {"cols": 2048, "min_weight_bytes": 268435456},
      "types": [{"weights": "Q4_0", "gemm_ops_per_s": 400e9, "gemv_bytes_per_s": 20e9,
                 "gemv_by_size": [{"matrix_bytes": 1048576, "bytes_per_s": 12e9},
                                  {"matrix_bytes": 268435456, "bytes_per_s": 20e9}]},
                {"weights": "F16", "gemm_ops_per_s": 90e9, "gemv_bytes_per_s": 30e9}]})"),
                             "new.json");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->matmul_shape.gemm_rows, 1024);
  EXPECT_EQ(r->matmul_shape.gemm_tokens, 128);
  EXPECT_EQ(r->matmul_shape.gemv_bytes, 268435456);
  EXPECT_EQ(r->matmul_shape.rounds, 10);
  const Hardware hw = hardware_from_hwprobe(r.value(), "new.json");
  ASSERT_NE(hw.matmul_ceiling(tern::DType::Q4_0), nullptr);
  EXPECT_DOUBLE_EQ(hw.matmul_ceiling(tern::DType::Q4_0)->gemm_ops_per_s, 400e9);
  EXPECT_DOUBLE_EQ(hw.matmul_ceiling(tern::DType::Q4_0)->gemv_bytes_per_s, 20e9);
  EXPECT_DOUBLE_EQ(hw.matmul_ceiling(tern::DType::F16)->gemm_ops_per_s, 90e9);
  // The GEMV by matrix size where the file has it (Q4_0), none where it does not (F16, an older file).
  ASSERT_EQ(hw.matmul_ceiling(tern::DType::Q4_0)->gemv_by_size.size(), 2u);
  EXPECT_DOUBLE_EQ(hw.matmul_ceiling(tern::DType::Q4_0)->gemv_rate(1048576), 12e9);
  EXPECT_TRUE(hw.matmul_ceiling(tern::DType::F16)->gemv_by_size.empty());
  // Written and read back, it is the same.
  auto again = hwprobe_from_json(hwprobe_to_json(r.value()), "again.json");
  ASSERT_TRUE(again.ok()) << again.message();
  ASSERT_EQ(again->matmul.size(), 2u);
  ASSERT_EQ(again->matmul[0].gemv_by_size.size(), 2u);
  EXPECT_DOUBLE_EQ(again->matmul[0].gemv_by_size[0].matrix_bytes, 1048576);
  EXPECT_DOUBLE_EQ(again->matmul[0].gemv_by_size[1].bytes_per_s, 20e9);
  EXPECT_EQ(hw.matmul_ceiling(tern::DType::Q8_0), nullptr);
  EXPECT_NE(hw.source.find("matmul kernel ceilings of 2 weight types"), std::string::npos) << hw.source;
  // The peaks are the hardware's whatever the kernels reach.
  EXPECT_DOUBLE_EQ(hw.peak_flops(Compute::INT8), 800e9);
  EXPECT_DOUBLE_EQ(hw.mem_bandwidth, 40e9);

  // A section that names an unknown type or lacks a rate is an error naming the file.
  const std::string bad_type =
      hwprobe_from_json(hwprobe_text(R"("matmul_kernels": {"types": [{"weights": "Q9_9", "gemm_ops_per_s": 1,
                                          "gemv_bytes_per_s": 1}]})"),
                        "bad.json")
          .message();
  EXPECT_NE(bad_type.find("bad.json: matmul_kernels: unknown type 'Q9_9'"), std::string::npos) << bad_type;
  const std::string no_rate =
      hwprobe_from_json(
          hwprobe_text(R"("matmul_kernels": {"types": [{"weights": "Q8_0", "gemm_ops_per_s": 1}]})"),
          "bad.json")
          .message();
  EXPECT_NE(no_rate.find("Q8_0 lacks a positive"), std::string::npos) << no_rate;
  const std::string unsorted =
      hwprobe_from_json(hwprobe_text(R"("matmul_kernels": {"types": [{"weights": "Q8_0", "gemm_ops_per_s": 1,
          "gemv_bytes_per_s": 1, "gemv_by_size": [{"matrix_bytes": 4e6, "bytes_per_s": 1},
                                                  {"matrix_bytes": 1e6, "bytes_per_s": 1}]}]})"),
                        "bad.json")
          .message();
  EXPECT_NE(unsorted.find("bad.json: matmul_kernels: Q8_0: gemv_by_size needs"), std::string::npos) << unsorted;
}

TEST(Hwprobe, AFileWithoutTheMatmulKernelsStillLoads) {
  // Written before hwprobe measured the kernels: it loads, the host hardware has no ceilings, and an
  // estimate with the kernels ceilings is the plain roofline, saying so.
  auto r = hwprobe_from_json(hwprobe_text(""), "old.json");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(r->matmul.empty());
  const Hardware hw = hardware_from_hwprobe(r.value(), "old.json");
  EXPECT_TRUE(hw.matmul_ceilings.empty());
  EXPECT_NE(hw.source.find("no matmul kernel ceilings (a file from an older tern hwprobe)"),
            std::string::npos)
      << hw.source;
  auto m = model_spec_from_preset("stories15M", hw, PrecisionChoice{tern::DType::Q4_0, {}, {}, {}});
  ASSERT_TRUE(m.ok()) << m.message();
  Workload w;
  w.prompt = 64;
  w.output = 16;
  auto peaks = estimate(m.value(), hw, w);
  auto kernels = estimate(m.value(), hw, w, EstimateOptions{1.0, 1.0, Ceilings::Kernels});
  ASSERT_TRUE(peaks.ok() && kernels.ok()) << peaks.message() << kernels.message();
  EXPECT_DOUBLE_EQ(kernels->ttft_s, peaks->ttft_s);
  EXPECT_DOUBLE_EQ(kernels->tpot_s, peaks->tpot_s);
  EXPECT_NE(kernels->ceilings_note.find("no kernel ceilings for host"), std::string::npos)
      << kernels->ceilings_note;
  EXPECT_EQ(format_hwprobe(r.value()).find("tern's matmul kernels"), std::string::npos);
  // Saving it again writes no empty section.
  EXPECT_EQ(hwprobe_to_json(r.value()).find("matmul_kernels"), std::string::npos);
}

TEST(KernelProbe, MeasuresEachShapeOfAModel) {
  ShapeProbe p;
  p.tokens = 8;
  p.stream_bytes = 1 << 20;
  p.rounds = 2;
  // A reduction width that leaves the integer GEMM a partial group (18 blocks), and a one-row-per-call
  // classifier shape, measured without a GEMM.
  auto r = measure_shape_ceilings({{DType::Q4_1, 64, 576, true}, {DType::Q8_0, 300, 64, false}}, p, 1);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 2u);
  const ShapeCeiling &a = (*r)[0], &b = (*r)[1];
  EXPECT_EQ(a.weights, DType::Q4_1);
  EXPECT_EQ(a.out, 64);
  EXPECT_EQ(a.in, 576);
  EXPECT_EQ(a.tokens, 8);
  EXPECT_GT(a.gemm_ops_per_s, 1e6);
  EXPECT_GT(a.gemv_bytes_per_s, 1e6);
  EXPECT_EQ(b.weights, DType::Q8_0);
  EXPECT_EQ(b.tokens, 0);
  EXPECT_EQ(b.gemm_ops_per_s, 0);
  EXPECT_GT(b.gemv_bytes_per_s, 1e6);

  // A width the type's blocks do not divide, and bad settings, are errors naming what is wrong.
  auto bad = measure_shape_ceilings({{DType::Q4_K, 16, 576, true}}, p, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("Q4_K 16 x 576"), std::string::npos) << bad.message();
  ShapeProbe zero = p;
  zero.tokens = 0;
  EXPECT_FALSE(measure_shape_ceilings({{DType::F32, 4, 4, true}}, zero, 1).ok());
  EXPECT_FALSE(measure_shape_ceilings({{DType::F32, 0, 4, true}}, p, 1).ok());
}

TEST(KernelProbe, MeasuresAttentionForTheModelsHeads) {
  tern::ModelConfig c;
  c.n_layers = 2;
  c.dim = 64;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 8;
  c.hidden_dim = 128;
  c.vocab_size = 32;
  c.max_seq_len = 64;
  auto r = measure_attention_ceilings(c, {{4, 0}, {1, 10}, {1, 33}}, 2, 1);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 3u);
  for (const AttentionCeiling& a : r.value()) {
    EXPECT_EQ(a.n_heads, 8);
    EXPECT_EQ(a.n_kv_heads, 4);
    EXPECT_EQ(a.head_dim, 8);
    EXPECT_GT(a.flops_per_s, 1e5);
  }
  EXPECT_EQ((*r)[0].tokens, 4);
  EXPECT_EQ((*r)[2].kv_start, 33);
  c.n_kv_heads = 3;  // 8 query heads cannot share 3 kv heads
  auto bad = measure_attention_ceilings(c, {{1, 0}}, 2, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("8 query, 3 kv"), std::string::npos) << bad.message();
}

TEST(Hwprobe, BadFiles) {
  EXPECT_NE(hwprobe_from_json("not json", "f.json").message().find("f.json"), std::string::npos);
  EXPECT_NE(hwprobe_from_json("{\"tern_hwprobe\": 1}", "f.json").message().find("lacks the read bandwidth"),
            std::string::npos);
  EXPECT_FALSE(load_hwprobe("/nonexistent/hwprobe.json").ok());
}

}  // namespace
