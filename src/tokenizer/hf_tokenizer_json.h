// Hugging Face tokenizer.json (the `tokenizers` library's format) -> a tern Tokenizer.
//
// Supported: model type "BPE", either byte-level (a ByteLevel pre-tokenizer, with Split regexes and Digits
// before it: GPT-2, Llama 3, Qwen2, SmolLM) -> BpeTokenizer, or SentencePiece-style (Metaspace pre-tokenizer
// or Prepend/Replace normalizer, byte_fallback: Llama 2, Mistral) -> SpmTokenizer with scores taken from
// the merge ranks. Normalizers NFC/NFD/NFKC/NFKD; added tokens with their special/lstrip/rstrip flags.
// Anything else (WordPiece, Unigram, unknown pre-tokenizers or normalizers) is a clear error naming the
// part of the file. The tokenizer_config.json beside the file, when present, gives bos_token, eos_token,
// add_bos_token and add_eos_token. See docs/tokenizer.md.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace tern {

// `json`: the tokenizer.json text; `config`: the tokenizer_config.json text, or "" if there is none.
// `source` names the file in error messages.
Result<std::unique_ptr<Tokenizer>> parse_tokenizer_json(const std::string& json, const std::string& config,
                                                        const std::string& source);

}  // namespace tern
