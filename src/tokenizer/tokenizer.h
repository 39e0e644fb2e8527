// Tokenizer interface shared by the SentencePiece-style BPE (spm.cpp) and byte-level BPE (bpe.cpp).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tern {

class GgufFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Text -> ids. `add_bos` prepends the BOS id (when the vocabulary has one); `add_eos` appends EOS.
  // `parse_special`: special tokens written in the text ("<|im_start|>", "<s>") become their ids; otherwise
  // they are tokenized as plain text (as llama.cpp does by default, and Hugging Face with
  // split_special_tokens). Non-special added tokens (HF "special": false, GGUF user-defined) always match.
  virtual std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos = false,
                                  bool parse_special = false) const = 0;

  // The bytes that `token` contributes to the output when it follows `prev` (streaming decode):
  // byte tokens give their raw byte, and a leading space is stripped right after BOS (SentencePiece).
  // Special (control) tokens give nothing unless `special`, then their text.
  virtual std::string decode_piece(int prev, int token, bool special = false) const = 0;

  // Whole-sequence decode: concatenated pieces (raw bytes reassembled into UTF-8); BOS/EOS and other
  // special tokens produce nothing unless `special`.
  std::string decode(const std::vector<int>& ids, bool special = false) const;

  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;  // -1 if none
  virtual int eos_id() const = 0;  // -1 if none
  // The stored piece string of a token (for `tern info` and tests).
  virtual std::string piece(int token) const = 0;

  // Whether a prompt should be encoded with BOS / EOS unless the user says otherwise (GGUF
  // tokenizer.ggml.add_bos_token / add_eos_token; llama2.c files: BOS yes, EOS no).
  virtual bool add_bos_by_default() const { return bos_id() >= 0; }
  virtual bool add_eos_by_default() const { return false; }

  // The id of the token stored as `piece` (spelled as piece() returns it: "<|im_end|>", "Ġhello", "▁hello"),
  // or -1.
  virtual int token_id(std::string_view piece) const;
  // Control tokens (BOS, EOS, <|im_start|>, ...): never produced from plain text.
  virtual bool is_special(int token) const { return false; }
  // End of generation: EOS, and end-of-turn tokens such as <|eot_id|> or <|im_end|> when the vocabulary has
  // them, so that generation can stop at the end of a turn.
  virtual bool is_eog(int token) const { return token >= 0 && token == eos_id(); }
};

// Whether a special token's text marks the end of a turn or of the text (<|eot_id|>, <|eom_id|>, <|im_end|>,
// <|endoftext|>, <|end_of_text|>, <end_of_turn>, <|end|>, </s>, <EOT>).
bool is_end_of_generation_text(std::string_view text);

// Loads a tokenizer from a llama2.c tokenizer.bin (vocab size is taken from the file length when
// `vocab_size` is 0), or from the tokenizer.ggml.* metadata of a GGUF file (full model or vocab-only).
Result<std::unique_ptr<Tokenizer>> load_tokenizer_bin(const std::string& path, int vocab_size = 0);
Result<std::unique_ptr<Tokenizer>> load_tokenizer_gguf(const GgufFile& gguf);
// A Hugging Face tokenizer.json (BPE model: byte-level, or SentencePiece-style with byte fallback), with the
// tokenizer_config.json beside it when present (BOS/EOS tokens and whether to add them). hf_tokenizer_json.cpp.
Result<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path);
// Detects the kind of file by its contents: GGUF magic, a JSON object (tokenizer.json), a folder holding a
// tokenizer.json (Hugging Face model folder), otherwise tokenizer.bin.
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path);

}  // namespace tern
