// SentencePiece-style BPE ("score BPE", the Llama 2 / Mistral / TinyLlama tokenizer): text is split into
// Unicode characters, then the adjacent pair whose concatenation is the highest-scoring vocabulary piece is
// merged until no pair is in the vocabulary; characters left unknown fall back to <0xXX> byte pieces.
// See docs/tokenizer.md for the exact rules and where they differ from the sentencepiece library.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/tokenizer.h"

namespace tern {

// Numbered as in sentencepiece_model.proto and GGUF's tokenizer.ggml.token_type.
enum class SpmPieceType : uint8_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

const char* spm_piece_type_name(SpmPieceType t);

// Everything a loader collects before the tokenizer is built. Pieces spell spaces as U+2581 ("▁"), as
// SentencePiece stores them.
struct SpmVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<SpmPieceType> types;
  int bos_id = -1;  // -1: none
  int eos_id = -1;
  int unk_id = -1;  // -1: the first piece of type kUnknown, if any
  // Prepend "▁" to non-empty text (SentencePiece's add_dummy_prefix; GGUF tokenizer.ggml.add_space_prefix).
  bool add_dummy_prefix = true;
  // Which text fragments get the dummy prefix when special tokens split the text (encode's parse_special).
  // true: every fragment, at the start and after each special token (llama.cpp; Hugging Face's Prepend
  // normalizer). false: only a fragment at the very start of the text (HF Metaspace prepend_scheme "first").
  bool dummy_prefix_every_fragment = true;
  // No dummy prefix for a fragment that already starts with a space or "▁" (HF Metaspace); sentencepiece
  // and llama.cpp add it regardless.
  bool dummy_prefix_unless_space = false;
  bool add_bos = true;  // what callers should do by default (GGUF tokenizer.ggml.add_bos_token)
  bool add_eos = false;
};

// Piece types for formats that do not store them (llama2.c tokenizer.bin, GGUF without token_type):
// unk/bos/eos by id, "<0xXX>" pieces as bytes, everything else normal.
std::vector<SpmPieceType> spm_infer_types(const std::vector<std::string>& pieces, int unk_id, int bos_id,
                                          int eos_id);

class SpmTokenizer final : public Tokenizer {
 public:
  // Validates the vocabulary (array lengths agree, special ids in range, byte pieces well formed);
  // `source` names the file in error messages.
  static Result<std::unique_ptr<SpmTokenizer>> create(SpmVocab vocab, const std::string& source);

  SpmTokenizer(const SpmTokenizer&) = delete;
  SpmTokenizer& operator=(const SpmTokenizer&) = delete;

  std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos = false,
                          bool parse_special = false) const override;
  std::string decode_piece(int prev, int token, bool special = false) const override;
  int vocab_size() const override { return static_cast<int>(v_.pieces.size()); }
  int bos_id() const override { return v_.bos_id; }
  int eos_id() const override { return v_.eos_id; }
  std::string piece(int token) const override;
  bool add_bos_by_default() const override { return v_.add_bos && v_.bos_id >= 0; }
  bool add_eos_by_default() const override { return v_.add_eos && v_.eos_id >= 0; }
  int token_id(std::string_view piece) const override;
  bool is_special(int token) const override;
  bool is_eog(int token) const override;

  int unk_id() const { return v_.unk_id; }
  SpmPieceType type(int token) const { return v_.types[static_cast<size_t>(token)]; }
  float score(int token) const { return v_.scores[static_cast<size_t>(token)]; }
  bool has_byte_fallback() const { return has_byte_pieces_; }
  bool words_are_independent() const { return words_are_independent_; }

 private:
  explicit SpmTokenizer(SpmVocab vocab);
  struct Symbol;
  void encode_fragment(std::string_view text, bool dummy_prefix, std::vector<int>& out) const;
  void encode_chunk(std::string_view text, bool dummy_prefix, std::vector<int>& out) const;
  void split(std::string_view normalized, std::vector<Symbol>& symbols) const;
  int find_mergeable(std::string_view piece) const;
  // Whether `p` holds a "▁" right after a character other than "▁" (a piece like "a▁b").
  static bool piece_joins_before_space(std::string_view p);
  // For each unused piece formed during one encode, the two pieces it was merged from.
  using RevMerge = std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>>;
  void emit(std::string_view piece, const RevMerge& rev_merge, std::vector<int>& out) const;

  SpmVocab v_;
  // Pieces that merges may produce (normal, user-defined, unused): keys view into v_.pieces.
  std::unordered_map<std::string_view, int> mergeable_;
  std::array<int, 256> byte_ids_;
  bool has_byte_pieces_ = false;
  bool has_unused_ = false;
  // True when no piece has the form "...x▁...": then merges never cross a word start and encode can
  // merge word by word (true for the Llama, Mistral and stories vocabularies).
  bool words_are_independent_ = true;
  // User-defined pieces are matched whole in the text before the split into characters.
  size_t max_user_defined_len_ = 0;
  // What each token contributes to decoded text ("▁" as " ", byte pieces as their byte, control as "").
  std::vector<std::string> surface_;
  std::unordered_map<std::string_view, int> piece_ids_;  // every piece, first id wins
  SpecialTokenMatcher specials_;                          // control and unknown pieces, for parse_special
  std::vector<uint8_t> eog_;
};

}  // namespace tern
