// `tern convert` on a Hugging Face folder writes its tokenizer (tokenizer.json + tokenizer_config.json) as
// GGUF tokenizer.ggml.* metadata: the converted file must tokenize the golden corpus (tests/golden/bpe_cases/)
// exactly as the folder does, carry the chat template, and run with no separate tokenizer.
// The folders are assembled in a temp dir from symlinks: a fixture's weights (tests/golden/hf/) beside a real
// tokenizer from ../shared/models/ (the vocab sizes then differ, which convert reports as a note).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/convert.h"
#include "formats/gguf.h"
#include "formats/model_file.h"
#include "test_util.h"
#include "tokenizer/bpe.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kFixture = std::string(TERN_SOURCE_DIR) + "/tests/golden/hf/llama_gqa_tied";

// A fresh folder holding links to the fixture's config and weights plus `extra` files (path -> name).
std::string make_folder(const std::string& name, const std::vector<std::pair<std::string, std::string>>& extra) {
  const fs::path dir = fs::path(tern_test::temp_dir()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(kFixture)) fs::create_symlink(e.path(), dir / e.path().filename());
  for (const auto& [from, to] : extra) fs::create_symlink(from, dir / to);
  return dir.string();
}

std::string convert(const std::string& dir, tern::ConvertStats* stats = nullptr) {
  auto m = tern::load_model_file(dir);
  EXPECT_TRUE(m.ok()) << m.message();
  if (!m.ok()) return "";
  const std::string out = dir + ".gguf";
  auto st = tern::convert_to_gguf(*m.value(), out);
  EXPECT_TRUE(st.ok()) << st.message();
  if (stats && st.ok()) *stats = st.value();
  return out;
}

std::string ids_str(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) s += std::to_string(id) + " ";
  return s;
}

struct Case {
  const char* tokenizer;  // folder under ../shared/models
  const char* golden;     // tests/golden/bpe_cases/<golden>.json: the corpus
  const char* pre;        // expected tokenizer.ggml.pre ("" for a SentencePiece-style tokenizer)
};

class ConvertTokenizer : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertTokenizer, FolderAndConvertedGgufTokenizeTheCorpusAlike) {
  const Case c = GetParam();
  TERN_REQUIRE_SHARED(tok_dir, std::string("models/") + c.tokenizer + "/tokenizer.json");
  const fs::path src = fs::path(tok_dir).parent_path();
  std::vector<std::pair<std::string, std::string>> extra = {{(src / "tokenizer.json").string(), "tokenizer.json"}};
  if (fs::exists(src / "tokenizer_config.json"))
    extra.emplace_back((src / "tokenizer_config.json").string(), "tokenizer_config.json");
  const std::string dir = make_folder(std::string("convtok_") + c.tokenizer, extra);
  tern::ConvertStats st;
  const std::string out = convert(dir, &st);
  ASSERT_FALSE(out.empty());

  auto from_dir = tern::load_tokenizer(dir);
  ASSERT_TRUE(from_dir.ok()) << from_dir.message();
  auto from_gguf = tern::load_tokenizer(out);
  ASSERT_TRUE(from_gguf.ok()) << from_gguf.message();
  const tern::Tokenizer& a = *from_dir.value();
  const tern::Tokenizer& b = *from_gguf.value();
  EXPECT_EQ(st.tokenizer_tokens, a.vocab_size());
  EXPECT_EQ(a.vocab_size(), b.vocab_size());
  EXPECT_EQ(a.bos_id(), b.bos_id());
  EXPECT_EQ(a.eos_id(), b.eos_id());
  EXPECT_EQ(a.add_bos_by_default(), b.add_bos_by_default());

  auto g = tern::GgufFile::open(out);
  ASSERT_TRUE(g.ok()) << g.message();
  if (*c.pre) {
    auto pre = g->get_string("tokenizer.ggml.pre");
    ASSERT_TRUE(pre.ok()) << pre.message();
    EXPECT_EQ(pre.value(), c.pre);
  }
  // The chat template is copied verbatim when tokenizer_config.json has one.
  const json config = json::parse(tern_test::read_file((src / "tokenizer_config.json").string()), nullptr, false);
  if (config.is_object() && config.contains("chat_template") && config["chat_template"].is_string()) {
    auto tmpl = g->get_string("tokenizer.chat_template");
    ASSERT_TRUE(tmpl.ok()) << tmpl.message();
    EXPECT_EQ(tmpl.value(), config["chat_template"].get<std::string>());
  }

  const json corpus = json::parse(
      tern_test::read_file(std::string(TERN_SOURCE_DIR) + "/tests/golden/bpe_cases/" + c.golden + ".json"), nullptr,
      false);
  ASSERT_TRUE(corpus.is_object() && corpus["cases"].is_array());
  int checked = 0, differ = 0, differ_allowed = 0;
  std::string first;
  for (const json& cs : corpus["cases"]) {
    if (!cs.contains("text") || !cs["text"].is_string()) continue;
    const std::string text = cs["text"].get<std::string>();
    // Where convert notes that GGUF cannot say what tokenizer.json does, differences are counted, not failed:
    // GGUF has no normalizer (Qwen2's NFC: text not in NFC), and GGUF's llama tokenizer adds the "▁" prefix
    // as sentencepiece does, also before a leading space or after a special token, where tokenizer.json's
    // Metaspace (prepend_scheme "first") does not.
    std::string sanitized, nfc;
    const std::string_view clean = tern::sanitize_utf8(text, sanitized);
    const bool not_nfc = tern::normalize_utf8(clean, tern::Normalization::kNFC, nfc) != clean;
    const bool leading_space = text.rfind(" ", 0) == 0 || text.rfind("\xE2\x96\x81", 0) == 0;
    for (bool special : {false, true}) {
      const auto ia = a.encode(text, a.add_bos_by_default(), false, special);
      const auto ib = b.encode(text, b.add_bos_by_default(), false, special);
      ++checked;
      if (ia == ib) continue;
      if (not_nfc || (!*c.pre && (special || leading_space))) {
        ++differ_allowed;
        continue;
      }
      if (++differ == 1)
        first = "'" + text + "' (special " + std::to_string(special) + "): folder " + ids_str(ia) + "| gguf " +
                ids_str(ib);
    }
    if (!not_nfc && (*c.pre || !leading_space)) {
      EXPECT_EQ(a.decode(a.encode(text, false)), b.decode(b.encode(text, false))) << text;
    }
  }
  EXPECT_GT(checked, 600);
  EXPECT_EQ(differ, 0) << "first: " << first;
  if (differ_allowed)
    std::printf("[ info ] %s: %d of %d encodes differ only where convert notes GGUF cannot follow tokenizer.json "
                "(sentencepiece's dummy prefix rule; no normalizer)\n",
                c.tokenizer, differ_allowed, checked);
}

INSTANTIATE_TEST_SUITE_P(Shared, ConvertTokenizer,
                         ::testing::Values(Case{"llama3-tokenizer", "llama3", "llama-bpe"},
                                           Case{"qwen2-tokenizer", "qwen2", "qwen2"},
                                           Case{"mistral-v0.3", "mistral-v0.3", ""}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.golden;
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// A tokenizer.json made for the fixture (96 tokens = its vocab_size): printable ASCII spelled with GPT-2's byte
// map (ids 0..94), a few merges and <|endoftext|> (95), with a ChatML template.
void write_tiny_tokenizer(const std::string& dir_name, std::string& json_path, std::string& config_path) {
  json vocab = json::object();
  for (int ch = 0x20; ch <= 0x7E; ++ch) vocab[tern::gpt2_spell(std::string(1, static_cast<char>(ch)))] = ch - 0x20;
  json tj = {{"version", "1.0"},
             {"added_tokens", json::array({{{"id", 95}, {"content", "<|endoftext|>"}, {"special", true}}})},
             {"normalizer", nullptr},
             {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
             {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
  json cfg = {{"bos_token", nullptr},
              {"eos_token", "<|endoftext|>"},
              {"chat_template",
               "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}"}};
  json_path = tern_test::temp_dir() + "/" + dir_name + "_tokenizer.json";
  config_path = tern_test::temp_dir() + "/" + dir_name + "_tokenizer_config.json";
  tern_test::write_file(json_path, tj.dump());
  tern_test::write_file(config_path, cfg.dump());
}

TEST(ConvertTokenizerRun, ConvertedFolderRunsWithoutATokenizerFlag) {
  std::string tj, cfg;
  write_tiny_tokenizer("tiny", tj, cfg);
  const std::string dir =
      make_folder("convtok_tiny", {{tj, "tokenizer.json"}, {cfg, "tokenizer_config.json"}});
  const std::string out = dir + ".gguf";
  auto r = tern_test::run_tern({"convert", dir, out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("no tokenizer written"), std::string::npos) << r.out;

  auto g = tern::GgufFile::open(out);
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g->get_string("tokenizer.ggml.model").value(), "gpt2");
  EXPECT_EQ(g->get_string("tokenizer.ggml.pre").value(), "gpt-2");
  EXPECT_EQ(g->get_uint("tokenizer.ggml.eos_token_id").value(), 95u);
  EXPECT_FALSE(g->find("tokenizer.ggml.bos_token_id"));
  EXPECT_TRUE(g->find("tokenizer.chat_template"));

  auto run = tern_test::run_tern({"run", "-m", out, "-p", "Hi there", "-n", "4", "--temp", "0"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("Hi there"), std::string::npos) << run.out;
  auto tok = tern_test::run_tern({"tokenize", "-m", out, "-p", "Hi!"});
  EXPECT_EQ(tok.exit_code, 0) << tok.err;
  EXPECT_NE(tok.out.find("40"), std::string::npos) << tok.out;  // 'H' = 0x48 - 0x20
}

TEST(ConvertTokenizerRun, UnsupportedTokenizerLeavesANoteNotAnError) {
  const std::string wp = tern_test::temp_dir() + "/wordpiece_tokenizer.json";
  tern_test::write_file(wp, R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})");
  const std::string dir = make_folder("convtok_wordpiece", {{wp, "tokenizer.json"}});
  tern::ConvertStats st;
  const std::string out = convert(dir, &st);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(st.tokenizer_tokens, 0);
  std::string notes;
  for (const auto& n : st.notes) notes += n + "\n";
  EXPECT_NE(notes.find("no tokenizer written"), std::string::npos) << notes;
  EXPECT_NE(notes.find("WordPiece"), std::string::npos) << notes;
  auto g = tern::GgufFile::open(out);
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->find("tokenizer.ggml.model"));
}

TEST(ConvertTokenizerRun, PreTokenizerWithoutAGgufNameIsAnError) {
  // A Split regex that none of tokenizer.ggml.pre's names applies.
  json tj = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}}}, {"merges", json::array()}}},
             {"pre_tokenizer",
              {{"type", "Sequence"},
               {"pretokenizers",
                {{{"type", "Split"}, {"pattern", {{"Regex", "[ab]"}}}, {"behavior", "Isolated"}},
                 {{"type", "ByteLevel"}, {"use_regex", false}}}}}}};
  auto md = tern::tokenizer_json_gguf_metadata(tj.dump(), "", "x/tokenizer.json");
  ASSERT_FALSE(md.ok());
  EXPECT_NE(md.message().find("x/tokenizer.json"), std::string::npos) << md.message();
  EXPECT_NE(md.message().find("tokenizer.ggml.pre"), std::string::npos) << md.message();
}

}  // namespace
