// Tokenizer interface shared by the SentencePiece-style BPE (spm.cpp) and, later, byte-level BPE (bpe.cpp).
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
  virtual std::vector<int> encode(std::string_view text, bool add_bos, bool add_eos = false) const = 0;

  // The bytes that `token` contributes to the output when it follows `prev` (streaming decode):
  // byte tokens give their raw byte, and a leading space is stripped right after BOS.
  virtual std::string decode_piece(int prev, int token) const = 0;

  // Whole-sequence decode: concatenated pieces (raw bytes reassembled into UTF-8); BOS/EOS produce nothing.
  std::string decode(const std::vector<int>& ids) const;

  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;  // -1 if none
  virtual int eos_id() const = 0;  // -1 if none
  // The stored piece string of a token (for `tern info` and tests).
  virtual std::string piece(int token) const = 0;

  // Whether a prompt should be encoded with BOS / EOS unless the user says otherwise (GGUF
  // tokenizer.ggml.add_bos_token / add_eos_token; llama2.c files: BOS yes, EOS no).
  virtual bool add_bos_by_default() const { return bos_id() >= 0; }
  virtual bool add_eos_by_default() const { return false; }
};

// Loads a tokenizer from a llama2.c tokenizer.bin (vocab size is taken from the file length when
// `vocab_size` is 0), or from the tokenizer.ggml.* metadata of a GGUF file (full model or vocab-only).
Result<std::unique_ptr<Tokenizer>> load_tokenizer_bin(const std::string& path, int vocab_size = 0);
Result<std::unique_ptr<Tokenizer>> load_tokenizer_gguf(const GgufFile& gguf);
// Detects the kind of file by its contents (GGUF magic, otherwise tokenizer.bin).
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path);

}  // namespace tern
