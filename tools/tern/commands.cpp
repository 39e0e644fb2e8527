// The declarative flag table: every subcommand and every flag it takes, in one place.
#include "commands.h"

#include <cstdio>

namespace tern::cli {

using K = FlagKind;

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> table = {
      {"run",
       "Generate text from a prompt. Prints the prompt followed by the generated text to stdout as it is\n"
       "produced; statistics (tokens, tok/s, ms per token) go to stderr.",
       {
           {"model", 'm', K::String, "MODEL", "", "model file: GGUF or llama2.c .bin (required)"},
           {"tokenizer", 'z', K::String, "TOKENIZER", "", "tokenizer file (tokenizer.bin or GGUF); default: the model's own"},
           {"prompt", 'p', K::String, "PROMPT", "", "prompt text"},
           {"n-predict", 'n', K::Int, "N", "256", "number of tokens to generate (stops earlier at EOS)"},
           {"temp", 0, K::Float, "T", "1.0", "sampling temperature; 0 = greedy"},
           {"top-k", 0, K::Int, "K", "0", "keep only the K most likely tokens; 0 = off"},
           {"top-p", 0, K::Float, "P", "1.0", "nucleus sampling: keep the smallest set with mass >= P; 1 = off"},
           {"min-p", 0, K::Float, "P", "0.0", "drop tokens less likely than P x the most likely; 0 = off"},
           {"repeat-penalty", 0, K::Float, "R", "1.0", "repetition penalty (CTRL-style); 1 = off"},
           {"frequency-penalty", 0, K::Float, "F", "0.0", "subtract F x count of each recent token"},
           {"presence-penalty", 0, K::Float, "F", "0.0", "subtract F from each recent token"},
           {"penalty-last-n", 0, K::Int, "N", "64", "how many recent tokens the penalties see (-1 = all)"},
           {"seed", 's', K::UInt64, "S", "", "random seed (default: from the clock; printed to stderr)"},
           {"ctx", 'c', K::Int, "C", "0", "context length (KV cache size); 0 = the model's, at most 4096"},
       },
       cmd_run},
      {"tokenize",
       "Print the token ids of a text, space separated, on one line.",
       {
           {"model", 'm', K::String, "MODEL_OR_TOKENIZER", "", "GGUF (full or vocab-only) or tokenizer.bin (required)"},
           {"prompt", 'p', K::String, "TEXT", "", "text to tokenize"},
           {"file", 'f', K::String, "FILE", "", "read the text from FILE instead"},
           {"no-bos", 0, K::Bool, "", "", "do not prepend the BOS token"},
       },
       cmd_tokenize},
      {"info",
       "Show a model's configuration, metadata, tensors (type, shape), parameter count and bytes.",
       {
           {"model", 'm', K::String, "MODEL", "", "model file (required)"},
           {"metadata", 0, K::Bool, "", "", "also list every GGUF metadata key"},
       },
       cmd_info},
      {"logits",
       "Run the model on token ids and write the logits of every position as float32 (n_ids x vocab),\n"
       "little-endian, to a file. Used to compare tern against reference implementations.",
       {
           {"model", 'm', K::String, "MODEL", "", "model file (required)"},
           {"ids", 0, K::String, "IDS", "", "token ids, space or comma separated (required)"},
           {"output", 'o', K::String, "FILE", "", "output file (required)"},
           {"prefill", 0, K::Bool, "", "", "process all ids in one forward call instead of one at a time"},
       },
       cmd_logits},
  };
  return table;
}

int fail(const char* command, const std::string& message) {
  std::fprintf(stderr, "tern %s: %s\n", command, message.c_str());
  return 1;
}

}  // namespace tern::cli
