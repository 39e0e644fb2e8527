// Byte-level BPE (GPT-2 style: Llama 3, Qwen2, SmolLM/SmolLM2, GPT-2): added and special tokens are cut out
// of the text first; each remaining fragment is normalised and split into pre-tokens by regexes
// (pretokenize.h); each pre-token's UTF-8 bytes are spelled with GPT-2's byte-to-Unicode map and merged by
// rank (the lowest-ranked adjacent pair first, leftmost on ties) until no listed merge applies.
// See docs/tokenizer.md for the exact rules and where tern differs from the reference libraries.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"

namespace tern {

// GPT-2's bytes_to_unicode: the printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, the
// other 68 take U+0100.. in byte order (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A). As UTF-8.
const std::string& gpt2_byte_to_unicode(uint8_t b);
// Inverse: the byte a spelled token stands for, by code point; -1 for a code point outside the map.
int gpt2_unicode_to_byte(uint32_t cp);
// `bytes` spelled with the map ("hello world" -> "helloĠworld").
std::string gpt2_spell(std::string_view bytes);

struct BpeAddedToken {
  int id = -1;
  std::string text;     // matched in the text as is
  bool special = true;  // matched only when encode() is asked to parse special tokens
  bool lstrip = false;  // whitespace on that side of a match belongs to it
  bool rstrip = false;
};

// Everything a loader collects before the tokenizer is built.
struct BpeVocab {
  // Normal tokens spelled with the GPT-2 byte map ("Ġhello"); added/special tokens as their plain text.
  std::vector<std::string> tokens;
  // GGUF token types (spm.h): normal, unknown, control, user-defined, unused. Byte is not valid here.
  std::vector<SpmPieceType> types;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order, spelled like tokens
  std::vector<std::string> pre_patterns;                    // applied in turn (pretokenize.h)
  Normalization normalization = Normalization::kNone;
  // A whole pre-token that is itself a normal token is taken as is (Llama 3's "ignore_merges").
  bool ignore_merges = false;
  int bos_id = -1;  // -1: none
  int eos_id = -1;
  int unk_id = -1;       // replaces bytes without a token (never for complete byte-level vocabularies)
  bool add_bos = false;  // what callers should do by default
  bool add_eos = false;
  // Tokens cut out of the text before pre-tokenization (see special_tokens.h).
  std::vector<BpeAddedToken> added;
  // End-of-generation ids besides EOS (e.g. GGUF tokenizer.ggml.eot_token_id); tokens whose text is a known
  // end-of-turn marker (<|eot_id|>, <|im_end|>, ...) are added automatically.
  std::vector<int> eog_ids;
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Validates the vocabulary (array lengths, ids in range, merges whose parts and result are tokens, regexes
  // that compile); `source` names the file in error messages.
  static Result<std::unique_ptr<BpeTokenizer>> create(BpeVocab vocab, const std::string& source);

  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos = false,
                          bool parse_special = false) const override;
  std::string decode_piece(int prev, int token, bool special = false) const override;
  int vocab_size() const override { return static_cast<int>(v_.tokens.size()); }
  int bos_id() const override { return v_.bos_id; }
  int eos_id() const override { return v_.eos_id; }
  std::string piece(int token) const override;
  bool add_bos_by_default() const override { return v_.add_bos && v_.bos_id >= 0; }
  bool add_eos_by_default() const override { return v_.add_eos && v_.eos_id >= 0; }
  int token_id(std::string_view piece) const override;
  bool is_special(int token) const override;
  bool is_eog(int token) const override;

  SpmPieceType type(int token) const { return v_.types[static_cast<size_t>(token)]; }
  const PreTokenizer& pre_tokenizer() const { return pre_; }
  bool ignore_merges() const { return v_.ignore_merges; }
  size_t n_merges() const { return merges_.size(); }

 private:
  BpeTokenizer(BpeVocab vocab, PreTokenizer pre);
  struct Merge {
    int32_t rank;
    int32_t id;  // the merged token
  };
  static uint64_t pair_key(int a, int b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  struct Scratch;
  void encode_text(std::string_view text, Scratch& s, std::vector<int>& out) const;
  void encode_word(std::string_view bytes, Scratch& s, std::vector<int>& out) const;

  BpeVocab v_;
  PreTokenizer pre_;
  std::unordered_map<std::string_view, int> ids_;  // spelling -> id; keys view into v_.tokens
  std::unordered_map<uint64_t, Merge> merges_;     // (left id, right id) -> rank and result
  std::array<int, 256> byte_ids_;                  // the token of each single byte, or -1
  SpecialTokenMatcher added_;
  std::vector<std::string> surface_;  // the bytes each token decodes to
  std::vector<uint8_t> eog_;
};

}  // namespace tern
