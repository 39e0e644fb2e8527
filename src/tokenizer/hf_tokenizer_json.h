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
#include <utility>
#include <vector>

#include "core/status.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace tern {

// `json`: the tokenizer.json text; `config`: the tokenizer_config.json text, or "" if there is none.
// `source` names the file in error messages.
Result<std::unique_ptr<Tokenizer>> parse_tokenizer_json(const std::string& json, const std::string& config,
                                                        const std::string& source);

// The tokenizer.ggml.* metadata (and tokenizer.chat_template) that describe the same tokenizer in a GGUF file,
// as llama.cpp's converter writes them, so that load_tokenizer_gguf() on the result encodes text as this
// tokenizer.json does. Byte-level BPE: model "gpt2", tokenizer.ggml.pre chosen by the pre-tokenizer regexes
// (llama-bpe, qwen2, smollm or gpt-2; any other chain is an error), tokens spelled with the byte map, merges
// "a b" in rank order. SentencePiece-style: model "llama", pieces with the scores tern derives from the merge
// ranks. Both: token types, bos/eos/unknown/padding ids, add_bos/add_eos, the chat template.
// What GGUF cannot say (added tokens' lstrip/rstrip; Metaspace's "first" prepend scheme) is listed in `notes`.
struct TokenizerGgufMetadata {
  std::vector<std::pair<std::string, GgufValue>> kv;  // in the order to write them
  int n_tokens = 0;
  std::vector<std::string> notes;
};
Result<TokenizerGgufMetadata> tokenizer_json_gguf_metadata(const std::string& json, const std::string& config,
                                                           const std::string& source);
// The same for a tokenizer.json file, with the tokenizer_config.json beside it when present.
Result<TokenizerGgufMetadata> load_tokenizer_json_gguf_metadata(const std::string& path);

}  // namespace tern
