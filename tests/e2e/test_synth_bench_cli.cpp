// `tern synth` and `tern bench` end to end: a full-size stories15M synthesised and run, bench's JSON on
// stories260K (the keys `tern estimate --validate` reads included), and bad input as one-line errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "test_util.h"

using namespace tern_test;

namespace {

void expect_one_line_error(const CmdResult& r, std::initializer_list<std::string> parts) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& p : parts)
    EXPECT_NE(r.err.find(p), std::string::npos) << "stderr lacks '" << p << "': " << r.err;
}

std::string fake_hwprobe() {
  const std::string path = temp_dir() + "/hwprobe_bench_fake.json";
  write_file(path, R"({"tern_hwprobe": 1, "date": "2025-01-01T00:00:00Z", "quick": true, "cpu": "Test CPU",
    "arch": "x86_64", "logical_cpus": 2, "physical_cores": 2, "threads": 2, "mem_total_bytes": 25000000000,
    "isa": ["avx2", "fma"], "caches": [{"level": 3, "type": "Unified", "size_bytes": 33554432, "instances": 1}],
    "bandwidth": {"array_bytes": 134217728, "read_bytes_per_s": 45e9, "read_one_thread_bytes_per_s": 30e9,
                  "copy_bytes_per_s": 30e9, "triad_bytes_per_s": 32e9},
    "peaks": [{"path": "avx2_fma_f32", "dtype": "f32", "what": "test", "one_thread_per_s": 80e9,
               "all_threads_per_s": 160e9}], "seconds": 1})");
  return path;
}

}  // namespace

TEST(SynthCli, Stories15MFullSizeRuns) {
  const std::string out = temp_dir() + "/synth_stories15M_f32.gguf";
  const CmdResult s = run_tern({"synth", "--shape", "stories15M", "--type", "F32", "-o", out, "--seed", "3"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.err.find("6 layers"), std::string::npos) << s.err;
  const CmdResult info = run_tern({"info", "-m", out});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const CmdResult r = run_tern({"run", "-m", out, "--temp", "0", "-n", "8", "-p", "Once upon a time"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("generated tokens"), std::string::npos) << r.err;
  std::filesystem::remove(out);
}

TEST(BenchCli, JsonOnStories260K) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.gguf");
  const CmdResult r = run_tern({"bench", "-m", model, "-p", "16", "-n", "8", "-r", "2", "--json", "--hw-file",
                                fake_hwprobe()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"prefill_tok_s", "decode_tok_s", "prefill_ms_per_token", "decode_ms_per_token",
                        "decode_bytes_per_token", "gb_s", "roofline_pct", "load_seconds"})
    EXPECT_GT(j.at(k).get<double>(), 0) << k;
  EXPECT_GE(j.at("prefill_tok_s_sd").get<double>(), 0);
  EXPECT_GE(j.at("decode_tok_s_sd").get<double>(), 0);
  EXPECT_GT(j.at("peak_rss_bytes").get<int64_t>(), 0);
  EXPECT_EQ(j.at("repetitions"), 2);
  EXPECT_EQ(j.at("prompt"), 16);
  EXPECT_EQ(j.at("output"), 8);
  EXPECT_EQ(j.at("backend"), "cpu");  // the default backend
  EXPECT_EQ(j.at("model"), model);
  EXPECT_NEAR(j.at("mem_bandwidth_gb_s").get<double>(), 45.0, 1e-9);
  EXPECT_NEAR(j.at("roofline_pct").get<double>(),
              100 * j.at("gb_s").get<double>() / 45.0, 1e-6);

  // Without a probe the roofline columns are null; the human table names the phases.
  const CmdResult n = run_tern({"bench", "-m", model, "-p", "8", "-n", "4", "-r", "1", "--json", "--no-roofline"});
  ASSERT_EQ(n.exit_code, 0) << n.err;
  EXPECT_TRUE(nlohmann::json::parse(n.out).at("roofline_pct").is_null());
  const CmdResult t = run_tern({"bench", "-m", model, "-p", "8", "-n", "4", "-r", "1", "--no-roofline"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("prefill"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("decode"), std::string::npos) << t.out;

  // --op-times: the time of every backend op by phase. stories260K has 5 layers, so each decode step (2
  // repetitions with the warm-up, 4 steps each) calls each layer's fused ops 5 times; the table says so too.
  const CmdResult o =
      run_tern({"bench", "-m", model, "-p", "8", "-n", "4", "-r", "1", "--json", "--no-roofline", "--op-times"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto ot = nlohmann::json::parse(o.out).at("op_times");
  std::map<std::string, int64_t> calls;
  double per_step = 0;
  for (const auto& e : ot.at("decode_per_step")) {
    calls[e.at("op").get<std::string>()] = e.at("calls").get<int64_t>();
    per_step += e.at("seconds_per_unit").get<double>();
  }
  EXPECT_EQ(calls["ffn_input (norm, gate, up, SiLU)"], 2 * 4 * 5);
  EXPECT_EQ(calls["attn_input (norm, QKV, rope)"], 2 * 4 * 5);
  EXPECT_EQ(calls["matmul_residual ffn_down"], 2 * 4 * 5);
  EXPECT_EQ(calls["embedding"], 2 * 4);
  EXPECT_GT(per_step, 0);
  EXPECT_FALSE(ot.at("prefill_per_prefill").empty());
  const CmdResult ott = run_tern({"bench", "-m", model, "-p", "8", "-n", "4", "-r", "1", "--no-roofline", "--op-times"});
  ASSERT_EQ(ott.exit_code, 0) << ott.err;
  EXPECT_NE(ott.out.find("decode step, by op (8 steps, warm-up included;"), std::string::npos) << ott.out;
  EXPECT_NE(ott.out.find("matmul_residual attn_output"), std::string::npos) << ott.out;
}

TEST(BenchCli, BadInput) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.gguf");
  expect_one_line_error(run_tern({"bench", "-m", model, "-r", "0"}), {"--repetitions (-r)"});
  expect_one_line_error(run_tern({"bench", "-m", model, "-p", "2100", "-n", "8", "--no-roofline"}),
                        {"exceeds the context length 2048"});
  expect_one_line_error(run_tern({"bench", "-m", model, "--backend", "tpu"}), {"unknown backend 'tpu'"});
  expect_one_line_error(run_tern({"bench", "-m", model, "--hw-file", temp_dir() + "/no_such_probe.json"}),
                        {"--hw-file"});
  expect_one_line_error(run_tern({"bench", "-m", model, "--chunk", "0"}), {"--chunk", "0"});
  expect_one_line_error(run_tern({"bench", "-m", model, "--kv-type", "q4"}), {"--kv-type", "q4", "q8_0"});
  // stories260K's heads are 8 wide: a q8_0 cache (blocks of 32 per head) cannot hold them.
  expect_one_line_error(run_tern({"bench", "-m", model, "--kv-type", "q8_0"}), {"q8_0", "head_dim", "f16"});
}

// Quantized weights are repacked for the cpu backend's GEMM at load, and bench reports how long and how big;
// --chunk splits the prefill without changing what is measured.
TEST(BenchCli, ReportsRepackingAndTakesChunk) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.gguf");
  const std::string q8 = temp_dir() + "/stories260K_q8_0.gguf";
  ASSERT_EQ(run_tern({"quantize", model, q8, "Q8_0"}).exit_code, 0);
  const CmdResult r = run_tern({"bench", "-m", q8, "-p", "16", "-n", "4", "-r", "1", "--chunk", "5", "--kv-type",
                                "f16", "--json", "--no-roofline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GE(j.at("prepare_seconds").get<double>(), 0);
  EXPECT_LE(j.at("prepare_seconds").get<double>(), j.at("load_seconds").get<double>());
  if (tern::cpu_supports_isa(tern::CpuIsa::Avx512)) {
    // Every Q8_0 matrix but the embedding table, at its own size (the packed layout keeps a row's bytes).
    EXPECT_GT(j.at("prepare_bytes").get<int64_t>(), 0);
    EXPECT_LT(j.at("prepare_bytes").get<int64_t>(), j.at("weight_bytes").get<int64_t>());
  } else {
    EXPECT_EQ(j.at("prepare_bytes").get<int64_t>(), 0) << "no packed GEMM without AVX-512 VNNI";
  }
}

TEST(SynthCli, BadInput) {
  const std::string out = temp_dir() + "/synth_bad.gguf";
  expect_one_line_error(run_tern({"synth", "--shape", "gpt-5", "-o", out}),
                        {"unknown shape 'gpt-5'", "stories15M", "Llama-3-8B", "Mistral-7B"});
  expect_one_line_error(run_tern({"synth", "--shape", "stories15M", "--type", "Q3_K", "-o", out}),
                        {"unknown type 'Q3_K'", "Q6_K"});
  expect_one_line_error(run_tern({"synth", "--shape", "stories15M", "--layers", "1", "-o",
                                  "/nonexistent_dir_tern/x.gguf"}),
                        {"/nonexistent_dir_tern/x.gguf"});
  expect_one_line_error(run_tern({"synth", "--type", "F16", "-o", out}), {"--shape is required"});
}
