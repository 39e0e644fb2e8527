// Bad input through the `tern` binary: every case must exit non-zero with exactly one line on stderr that
// names the flag or file involved, and never abort or trip a sanitizer.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "gguf_builder.h"
#include "test_util.h"

using namespace tern_test;

namespace {

std::string write_tmp(const std::string& bytes, const std::string& tag) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string p = temp_dir() + "/" + info->test_suite_name() + "." + info->name() + tag;
  ::unlink(p.c_str());
  write_file(p, bytes);
  return p;
}

// Checks the one-line error contract and that stderr mentions every one of `parts`.
void expect_cli_error(const std::vector<std::string>& args, std::initializer_list<std::string> parts) {
  std::string cmd = "tern";
  for (const auto& a : args) cmd += " '" + a + "'";
  SCOPED_TRACE(cmd);
  const CmdResult r = run_tern(args);
  EXPECT_NE(r.exit_code, 0) << "stderr: " << r.err;
  EXPECT_LT(r.exit_code, 128) << "killed by a signal; stderr: " << r.err;
  // Exactly one line: non-empty, one newline, at the end.
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.back(), '\n') << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr is not one line:\n" << r.err;
  for (const char* bad : {"Aborted", "Sanitizer", "runtime error", "terminate called", "Assertion", "Segmentation"})
    EXPECT_EQ(r.err.find(bad), std::string::npos) << r.err;
  for (const auto& p : parts) EXPECT_NE(r.err.find(p), std::string::npos) << "stderr lacks '" << p << "': " << r.err;
}

std::string tiny_gguf() {
  TinyLlama t;
  return t.builder().build();
}

}  // namespace

// ---- files

TEST(CliErrors, MissingModelFile) {
  const std::string missing = temp_dir() + "/no_such_model.gguf";
  expect_cli_error({"info", "-m", missing}, {missing, "cannot open"});
  expect_cli_error({"run", "-m", missing, "-p", "hi"}, {missing});
  expect_cli_error({"logits", "-m", missing, "--ids", "1 2", "-o", temp_dir() + "/l.bin"}, {missing});
}

TEST(CliErrors, DirectoryAsModel) {
  // A directory is read as a Hugging Face model folder; one without config.json is an error naming it.
  const std::string dir = temp_dir() + "/not_a_model_dir";
  ::mkdir(dir.c_str(), 0755);
  expect_cli_error({"info", "-m", dir}, {dir});
  expect_cli_error({"run", "-m", dir, "-p", "hi"}, {dir});
}

TEST(CliErrors, WrongMagic) {
  std::string bytes = tiny_gguf();
  bytes.replace(0, 4, "GGUX");
  // Named .gguf: reported as a GGUF file with a bad magic.
  const std::string p = write_tmp(bytes, ".gguf");
  expect_cli_error({"info", "-m", p}, {p, "bad magic"});
  // Any other name is read as a llama2.c checkpoint, whose header is then nonsense; the file is named.
  const std::string b = write_tmp(bytes, ".bin");
  expect_cli_error({"info", "-m", b}, {b});
}

TEST(CliErrors, TruncatedGguf) {
  const std::string bytes = tiny_gguf();
  const std::string p = write_tmp(bytes.substr(0, bytes.size() - 10), ".gguf");
  expect_cli_error({"info", "-m", p}, {p, "output_norm.weight", "past the end"});
  const std::string h = write_tmp(bytes.substr(0, 30), "_header.gguf");
  expect_cli_error({"info", "-m", h}, {h});
}

TEST(CliErrors, GgufWithMissingTensor) {
  TinyLlama t;
  GgufBuilder b = t.builder();
  b.remove_tensor("blk.0.attn_v.weight");
  const std::string p = write_tmp(b.build(), ".gguf");
  expect_cli_error({"info", "-m", p}, {p, "blk.0.attn_v.weight"});
}

TEST(CliErrors, GgufWithoutTokenizerForRun) {
  const std::string p = write_tmp(tiny_gguf(), ".gguf");
  expect_cli_error({"run", "-m", p, "-p", "hello", "-n", "1"}, {p, "-z"});
}

// ---- flags

TEST(CliErrors, UnknownFlag) {
  expect_cli_error({"info", "--bogus"}, {"--bogus"});
  expect_cli_error({"run", "-m", "x", "-q", "1"}, {"-q"});
}

TEST(CliErrors, MissingFlagValue) {
  expect_cli_error({"info", "-m"}, {"--model", "missing value"});
  expect_cli_error({"run", "-m", "x", "--temp"}, {"--temp", "missing value"});
}

TEST(CliErrors, NonNumericTemp) { expect_cli_error({"run", "-m", "x", "--temp", "abc"}, {"--temp", "abc"}); }

TEST(CliErrors, NegativeTemp) {
  // Range checks come before the model is opened, so the (absent) model file does not matter.
  expect_cli_error({"run", "-m", "/nonexistent.gguf", "--temp", "-1"}, {"--temp"});
}

TEST(CliErrors, TopPOutOfRange) {
  expect_cli_error({"run", "-m", "/nonexistent.gguf", "--top-p", "0"}, {"--top-p"});
  expect_cli_error({"run", "-m", "/nonexistent.gguf", "--top-p", "1.5"}, {"--top-p"});
}

TEST(CliErrors, NegativeNPredict) {
  expect_cli_error({"run", "-m", "/nonexistent.gguf", "-n", "-5"}, {"--n-predict", "-5"});
}

TEST(CliErrors, NonIntegerNPredict) {
  expect_cli_error({"run", "-m", "x", "-n", "2.5"}, {"--n-predict", "2.5"});
  expect_cli_error({"run", "-m", "x", "-n", "99999999999"}, {"--n-predict"});
}

TEST(CliErrors, NegativeSeedAndTopK) {
  expect_cli_error({"run", "-m", "x", "--seed", "-1"}, {"--seed", "-1"});
  expect_cli_error({"run", "-m", "/nonexistent.gguf", "--top-k", "-2"}, {"--top-k"});
}

TEST(CliErrors, RunWithoutModelAndNoDefault) {
  // Without -m, run falls back to $TERN_MODEL (then the default model): a missing file is named.
  const std::string missing = temp_dir() + "/no_such_model.gguf";
  auto r = run_tern({"run", "-p", "hello"}, "", {"TERN_MODEL=" + missing});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliErrors, InfoWithoutModel) { expect_cli_error({"info"}, {"--model"}); }

TEST(CliErrors, TokenizeWithPromptAndFile) {
  const std::string f = write_tmp("some text", ".txt");
  expect_cli_error({"tokenize", "-m", "x", "-p", "hi", "--file", f}, {"--prompt", "--file"});
}

TEST(CliErrors, TokenizeMissingFile) {
  const std::string missing = temp_dir() + "/no_such_text.txt";
  expect_cli_error({"tokenize", "-m", "x", "--file", missing}, {"--file", missing});
}

TEST(CliErrors, LogitsBadIds) {
  const std::string out = temp_dir() + "/logits_bad_ids.bin";
  expect_cli_error({"logits", "-m", "x", "--ids", "1 x", "-o", out}, {"--ids", "'x'"});
  expect_cli_error({"logits", "-m", "x", "--ids", "1 -3", "-o", out}, {"--ids", "'-3'"});
  expect_cli_error({"logits", "-m", "x", "--ids", " ", "-o", out}, {"--ids"});
}

TEST(CliErrors, LogitsMissingRequiredFlags) {
  expect_cli_error({"logits", "-m", "x", "--ids", "1"}, {"--output"});
  expect_cli_error({"logits", "-m", "x", "-o", "y"}, {"--ids"});
}

TEST(CliErrors, LogitsIdOutsideVocabulary) {
  const std::string p = write_tmp(tiny_gguf(), ".gguf");
  expect_cli_error({"logits", "-m", p, "--ids", "1 16", "-o", temp_dir() + "/l16.bin"}, {"16"});
}

TEST(CliErrors, BoolFlagWithValue) { expect_cli_error({"info", "-m", "x", "--metadata=yes"}, {"--metadata"}); }

TEST(CliErrors, UnknownSubcommand) { expect_cli_error({"frobnicate", "-m", "x"}, {"frobnicate"}); }

TEST(CliErrors, UnexpectedPositional) { expect_cli_error({"info", "model.gguf"}, {"model.gguf"}); }

// ---- with the shared stories260K model

TEST(CliErrors, CtxLargerThanModel) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  expect_cli_error({"run", "-m", model, "-z", tok, "-p", "Once", "-n", "1", "--ctx", "100000"}, {"--ctx", "100000", "512"});
}

TEST(CliErrors, NegativeCtx) {
  expect_cli_error({"run", "-m", "/nonexistent.gguf", "--ctx", "-3"}, {"--ctx"});
}

TEST(CliErrors, PromptLongerThanCtx) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  const std::string prompt =
      "Once upon a time there was a little girl who lived in a village near the forest and she liked to play";
  expect_cli_error({"run", "-m", model, "-z", tok, "-p", prompt, "-n", "1", "--ctx", "8"}, {"--ctx", "8"});
}

TEST(CliErrors, Llama2cWithoutTokenizer) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  expect_cli_error({"run", "-m", model, "-p", "Once", "-n", "1"}, {model, "-z"});
}

TEST(CliErrors, TokenizerVocabMismatch) {
  // The llama2 tokenizer (32000 tokens) with stories260K (512): both sizes and the model are named.
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/llama2-tokenizer/tokenizer.bin");
  expect_cli_error({"run", "-m", model, "-z", tok, "-p", "Once", "-n", "1"}, {model, "32000", "512"});
}

TEST(CliErrors, MissingTokenizerFile) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.bin");
  const std::string missing = temp_dir() + "/no_such_tokenizer.bin";
  expect_cli_error({"run", "-m", model, "-z", missing, "-p", "Once", "-n", "1"}, {missing});
}

TEST(CliErrors, LogitsTooManyIdsForContext) {
  // The tiny model's context is 32 positions.
  const std::string p = write_tmp(tiny_gguf(), ".gguf");
  std::string ids;
  for (int i = 0; i < 33; ++i) ids += "1 ";
  expect_cli_error({"logits", "-m", p, "--ids", ids, "-o", temp_dir() + "/l33.bin"}, {"33", "32"});
}

TEST(CliErrors, LogitsUnwritableOutput) {
  const std::string p = write_tmp(tiny_gguf(), ".gguf");
  const std::string out = temp_dir() + "/no_such_dir/out.bin";
  expect_cli_error({"logits", "-m", p, "--ids", "1 2", "-o", out}, {"--output", out});
}

// ---- backends

TEST(CliErrors, BackendChoices) {
  TERN_REQUIRE_SHARED(m, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  const std::vector<std::string> base = {"run", "-m", m, "-z", tok, "-p", "Once", "-n", "1"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> v = base;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  expect_cli_error(with({"--backend", "tpu"}), {"unknown backend 'tpu'"});
  expect_cli_error(with({"--device", "cuda", "--backend", "cpu"}), {"--device", "--backend"});
  expect_cli_error(with({"--matmul", "warp"}), {"--matmul", "cuda"});
  expect_cli_error(with({"-t", "-2"}), {"--threads", "-2"});
  // --device cpu is the cpu backend.
  const CmdResult ok = run_tern(with({"--device", "cpu", "--temp", "0"}));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// --float-matmul picks how the cpu backend multiplies F16/BF16 weights; a bad value or another backend is a
// one-line error naming the flag (and the choices), and bf16 on a CPU without AVX512_BF16 says so.
TEST(CliErrors, FloatMatmulChoices) {
  TERN_REQUIRE_SHARED(m, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  const std::vector<std::string> base = {"run", "-m", m, "-z", tok, "-p", "Once", "-n", "1", "--temp", "0"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> v = base;
    v.insert(v.end(), extra.begin(), extra.end());
    return v;
  };
  expect_cli_error(with({"--float-matmul", "fp16"}), {"--float-matmul", "'fp16'", "f32, bf16"});
  expect_cli_error(with({"--float-matmul", "bf16", "--backend", "reference"}), {"--float-matmul", "--backend cpu"});
  const CmdResult f32 = run_tern(with({"--float-matmul", "f32"}));
  EXPECT_EQ(f32.exit_code, 0) << f32.err;
  if (tern::cpu_supports_bf16_matmul()) {
    const CmdResult bf16 = run_tern(with({"--float-matmul", "bf16"}));
    EXPECT_EQ(bf16.exit_code, 0) << bf16.err;
  } else {
    expect_cli_error(with({"--float-matmul", "bf16"}), {"--float-matmul bf16", "AVX512_BF16"});
  }
}

// Without a GPU (this build has no CUDA, or the machine has no device) --device cuda is a one-line error
// that says which, never a crash.
TEST(CliErrors, CudaWithoutAGpu) {
#ifdef TERN_HAVE_CUDA
  GTEST_SKIP() << "a CUDA build: tests/cuda/ covers --backend cuda with and without a device";
#else
  TERN_REQUIRE_SHARED(m, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  expect_cli_error({"run", "-m", m, "-z", tok, "-p", "Once", "--device", "cuda"}, {"no CUDA support", "-DTERN_CUDA=ON"});
  expect_cli_error({"bench", "-m", m, "--backend", "cuda"}, {"no CUDA support"});
#endif
}
