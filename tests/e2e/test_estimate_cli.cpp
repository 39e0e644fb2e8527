// `tern estimate` and `tern hwprobe` end to end: the reference example, JSON and SVG output, the host
// hardware from a hwprobe file, and bad input as one-line errors that list the valid choices.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace tern_test;

namespace {

// A hwprobe file with round numbers: 45 GB/s, 160 GFLOP/s f32, 25 GB of memory.
std::string fake_hwprobe() {
  const std::string path = temp_dir() + "/hwprobe_fake.json";
  write_file(path, R"({"tern_hwprobe": 1, "date": "2025-01-01T00:00:00Z", "quick": true, "cpu": "Test CPU",
    "arch": "x86_64", "logical_cpus": 2, "physical_cores": 2, "threads": 2, "mem_total_bytes": 25000000000,
    "isa": ["avx2", "fma"], "caches": [{"level": 3, "type": "Unified", "size_bytes": 33554432, "instances": 1}],
    "bandwidth": {"array_bytes": 134217728, "read_bytes_per_s": 45e9, "read_one_thread_bytes_per_s": 30e9,
                  "copy_bytes_per_s": 30e9, "triad_bytes_per_s": 32e9},
    "peaks": [{"path": "avx2_fma_f32", "dtype": "f32", "what": "test", "one_thread_per_s": 80e9,
               "all_threads_per_s": 160e9}], "seconds": 1})");
  return path;
}

void expect_one_line_error(const CmdResult& r, std::initializer_list<std::string> parts) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& p : parts)
    EXPECT_NE(r.err.find(p), std::string::npos) << "stderr lacks '" << p << "': " << r.err;
}

TEST(EstimateCli, ReferenceExample) {
  const CmdResult r = run_tern({"estimate", "--example", "reference"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("llama-3-8b: 8.030 B parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NVIDIA A100 80GB PCIe"), std::string::npos);
  EXPECT_NE(r.out.find("TTFT                    815.44 ms"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TPOT                    9.47 ms"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("128.0 KiB per token"), std::string::npos);
  for (const char* op : {"attn_q", "attention", "ffn_down", "output"})
    EXPECT_NE(r.out.find(op), std::string::npos);
}

TEST(EstimateCli, PublishedAssumptions) {
  const CmdResult r = run_tern({"estimate", "--example", "reference", "--assume", "llm-workload"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("TPOT                    14.74 ms"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no causal mask"), std::string::npos);
}

TEST(EstimateCli, JsonAndSvg) {
  const std::string svg = temp_dir() + "/roofline.svg";
  const CmdResult r = run_tern({"estimate", "--example", "reference", "--json", "--svg", svg});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["results"]["ttft_s"].get<double>(), 0.81544, 1e-5);
  EXPECT_EQ(j["workload"]["batch"], 8);
  EXPECT_EQ(j["model"]["params"], 8030261248);
  const std::string chart = read_file(svg);
  EXPECT_EQ(chart.rfind("<svg", 0), 0u);
  EXPECT_NE(chart.find("</svg>"), std::string::npos);
}

TEST(EstimateCli, PresetFlagsOverrideTheExample) {
  const CmdResult r = run_tern({"estimate", "--example", "reference", "--hw", "h100-sxm", "--weights", "q4_k",
                                "-b", "1", "-p", "128", "-n", "32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("NVIDIA H100 SXM"), std::string::npos);
  EXPECT_NE(r.out.find("weights Q4_K"), std::string::npos);
  EXPECT_NE(r.out.find("batch 1, prompt 128 tokens, output 32 tokens"), std::string::npos);
}

TEST(EstimateCli, HostFromAHwprobeFileAndAModelFile) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  const CmdResult r = run_tern(
      {"estimate", "-m", model, "--hw", "host", "--hw-file", fake_hwprobe(), "-p", "64", "-n", "16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Test CPU (2 threads)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("45 GB/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weights F32"), std::string::npos);
  EXPECT_NE(r.out.find("KV cache f32"), std::string::npos);
}

TEST(EstimateCli, ListShowsPresetsAndSources) {
  const CmdResult r = run_tern({"estimate", "--list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* k : {"llama-3-8b", "llama-2-7b", "mistral-7b", "llama-3.2-1b", "tinyllama-1.1b",
                        "smollm2-135m", "stories15M", "stories110M", "a100-80gb-pcie", "a100-80gb-sxm",
                        "h100-sxm", "h100-pcie", "h200", "rtx-4090", "rtx-4080-super", "host", "datasheet"})
    EXPECT_NE(r.out.find(k), std::string::npos) << k;
}

TEST(EstimateCli, BadInput) {
  expect_one_line_error(run_tern({"estimate", "-m", "llama-9b", "--hw", "a100-80gb-pcie"}),
                        {"unknown model 'llama-9b'", "presets: llama-3-8b, llama-2-7b"});
  expect_one_line_error(run_tern({"estimate", "-m", "llama-3-8b", "--hw", "a200"}),
                        {"unknown hardware 'a200'", "a100-80gb-pcie", "rtx-4080-super, host"});
  expect_one_line_error(run_tern({"estimate", "--example", "reference", "-b", "0"}),
                        {"batch must be at least 1"});
  expect_one_line_error(run_tern({"estimate", "--example", "reference", "-p", "8000"}),
                        {"10048 tokens exceeds llama-3-8b's context of 8192 tokens by 1856"});
  expect_one_line_error(
      run_tern({"estimate", "--example", "reference", "--hw", "rtx-4080-super"}),
      {"does not fit in NVIDIA GeForce RTX 4080 SUPER", "over by", "largest batch that fits is"});
  expect_one_line_error(run_tern({"estimate", "--example", "reference", "--weights", "q9"}),
                        {"--weights", "unknown type 'q9'", "q8_0"});
  expect_one_line_error(run_tern({"estimate", "--example", "reference", "--attn", "paged"}),
                        {"--attn", "flash, naive"});
  expect_one_line_error(run_tern({"estimate", "--example", "nope"}), {"unknown example 'nope'", "reference"});
  expect_one_line_error(run_tern({"estimate", "--example", "reference", "--assume", "x"}),
                        {"tern, llm-workload"});
  expect_one_line_error(run_tern({"estimate", "--hw", "a100-80gb-pcie"}), {"--model (-m) is required"});
  const std::string bad = temp_dir() + "/bad_hwprobe.json";
  write_file(bad, "{\"something\": 1}");
  expect_one_line_error(run_tern({"estimate", "-m", "stories15M", "--hw", "host", "--hw-file", bad}),
                        {bad, "not a tern hwprobe file"});
}

TEST(EstimateCli, ValidateListsPredictions) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  const CmdResult r =
      run_tern({"estimate", "--validate", "--hw-file", fake_hwprobe(), "--validate-models", model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("roofline vs tern bench"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stories260K.bin"), std::string::npos) << r.out;
}

TEST(EstimateCli, ProbeShapesMeasuresTheModelsOwnMatrices) {
  // stories260K: dim 64, ffn 172, 8 query / 4 kv heads of 8, vocab 512, F32, tied.
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  const CmdResult r = run_tern({"estimate", "-m", model, "--hw", "host", "--hw-file", fake_hwprobe(), "-p", "32",
                                "-n", "8", "--probe-shapes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("on their own shapes, and attention by tern's attention"), std::string::npos) << r.out;
  // The attention of the prefill chunk and of the first, middle and last decode steps (32 + 0, 3, 6 cached).
  for (const char* point : {"attention, 8/4 heads of 8, 32 tokens after 0 cached", "1 token after 32 cached",
                            "1 token after 35 cached", "1 token after 38 cached"})
    EXPECT_NE(r.out.find(point), std::string::npos) << point << "\n" << r.out;
  EXPECT_NE(r.out.find(" attn "), std::string::npos) << r.out;  // the attention rows' roof
  for (const char* shape : {"f32 64x64: GEMM", "f32 32x64: GEMM", "f32 172x64: GEMM", "f32 64x172: GEMM",
                            "f32 512x64: GEMV"})
    EXPECT_NE(r.out.find(shape), std::string::npos) << shape << "\n" << r.out;
  EXPECT_NE(r.out.find(" f32 compute"), std::string::npos) << r.out;  // prefill matmuls, by their shapes
  // With --validate, each model's shapes are measured before its run and listed under the table.
  const CmdResult v = run_tern({"estimate", "--validate", "--hw-file", fake_hwprobe(), "--validate-models", model,
                                "-p", "32", "-n", "8", "--probe-shapes"});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("on its own shape and the attention by tern's attention"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("attention, 1 token after 32 cached"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("measured just before its run:"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("GEMM"), std::string::npos) << v.out;
  // Only the host's CPU can be probed, and only for the kernels ceilings.
  expect_one_line_error(run_tern({"estimate", "-m", "stories15M", "--hw", "h100-sxm", "--probe-shapes"}),
                        {"--probe-shapes", "--hw host"});
  expect_one_line_error(run_tern({"estimate", "-m", model, "--hw", "host", "--hw-file", fake_hwprobe(),
                                  "--probe-shapes", "--ceilings", "peaks"}),
                        {"--probe-shapes", "--ceilings kernels"});
}

TEST(EstimateCli, HwprobeQuick) {
  const std::string out = temp_dir() + "/hwprobe_quick.json";
  const CmdResult r = run_tern({"hwprobe", "--quick", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("bandwidth"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scalar_f32"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(read_file(out));
  EXPECT_EQ(j["tern_hwprobe"], 1);
  EXPECT_GT(j["bandwidth"]["read_bytes_per_s"].get<double>(), 0);
  // The saved file serves `estimate --hw host`.
  const CmdResult e =
      run_tern({"estimate", "-m", "stories15M", "--hw", "host", "--hw-file", out, "-p", "32", "-n", "8"});
  EXPECT_EQ(e.exit_code, 0) << e.err;
}

}  // namespace
