// The declarative flag table: every subcommand and every flag it takes, in one place.
#include "commands.h"

#include <cstdio>

namespace tern::cli {

using K = FlagKind;

namespace {

constexpr const char* kModelHelp =
    "model: GGUF, llama2.c .bin or Hugging Face folder (default: models/SmolLM2-135M-Instruct.Q4_1.gguf)";

// The sampling flags of every generating command, declared once.
std::vector<FlagSpec> sampling_flags() {
  return {
      {"temp", 0, K::Float, "T", "1.0", "sampling temperature; 0 = greedy"},
      {"top-k", 0, K::Int, "K", "0", "keep only the K most likely tokens; 0 = off"},
      {"top-p", 0, K::Float, "P", "1.0", "nucleus sampling: keep the smallest set with mass >= P; 1 = off"},
      {"min-p", 0, K::Float, "P", "0.0", "drop tokens less likely than P x the most likely; 0 = off"},
      {"repeat-penalty", 0, K::Float, "R", "1.0", "repetition penalty (CTRL-style); 1 = off"},
      {"frequency-penalty", 0, K::Float, "F", "0.0", "subtract F x count of each recent token"},
      {"presence-penalty", 0, K::Float, "F", "0.0", "subtract F from each recent token"},
      {"penalty-last-n", 0, K::Int, "N", "64", "how many recent tokens the penalties see (-1 = all)"},
      {"seed", 's', K::UInt64, "S", "", "random seed (default: from the clock; printed to stderr)"},
  };
}

// Which backend computes, and with how many threads: every command that runs the model. `logits` defaults to
// the reference backend: it exists to compare tern with independent references (tests/reference/), which
// hold quantized files to 1e-4, and the cpu backend also rounds activations to int8 for quantized weights.
std::vector<FlagSpec> backend_flags(const char* default_backend = "cpu") {
  return {
      {"backend", 0, K::String, "NAME", default_backend, "compute backend: cpu (threads + SIMD), reference (scalar oracle) or cuda (NVIDIA GPU, builds with -DTERN_CUDA=ON)"},
      {"threads", 't', K::Int, "N", "0", "threads for the cpu backend; 0 = the number of physical cores"},
      {"device", 0, K::String, "NAME", "", "where to compute: cpu or cuda (the same as --backend)"},
      {"kv-type", 0, K::String, "T", "f32", "KV cache type: f32, f16 or q8_0 (q8_0 needs head_dim % 32 == 0)"},
      {"matmul", 0, K::String, "KIND", "fast", "cuda: decode matrix-vector kernel: naive, warp, fast or cublas"},
      {"float-matmul", 0, K::String, "MODE", "f32", "cpu: F16/BF16 weights multiplied in f32 (exact products) or bf16 "
                                                    "(rounds activations, and F16 weights, to bf16; needs AVX512_BF16)"},
      {"no-graphs", 0, K::Bool, "", "", "cuda: launch the decode step's kernels one by one (no CUDA graph)"},
  };
}

std::vector<FlagSpec> join(std::vector<FlagSpec> a, const std::vector<FlagSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> table = {
      {"run",
       "Generate text from a prompt. Prints the prompt followed by the generated text to stdout as it is\n"
       "produced; statistics (tokens, tok/s, ms per token) go to stderr. With --chat the prompt is sent as\n"
       "one user message through the model's chat template and only the reply is printed.",
       join({
                {"model", 'm', K::String, "MODEL", "", kModelHelp},
                {"tokenizer", 'z', K::String, "TOKENIZER", "", "tokenizer file (tokenizer.bin, GGUF, tokenizer.json); default: the model's own"},
                {"prompt", 'p', K::String, "PROMPT", "", "prompt text"},
                {"n-predict", 'n', K::Int, "N", "256", "number of tokens to generate (stops earlier at EOS)"},
                {"ctx", 'c', K::Int, "C", "0", "context length (KV cache size); 0 = the model's, at most 4096"},
                {"chat", 0, K::Bool, "", "", "treat the prompt as a user message in the model's chat template"},
                {"system", 0, K::String, "TEXT", "", "system prompt for --chat (default: the template's own, if any)"},
                {"template", 0, K::String, "NAME", "", "chat template: chatml, llama2, llama3, mistral (default: from the model)"},
                {"batch-file", 0, K::String, "FILE", "", "generate for every line of FILE (one prompt each) through the batched "
                                                       "engine; prints the completions in order and aggregate tok/s, TTFT, time per token"},
                {"parallel", 0, K::Int, "N", "8", "with --batch-file: sequences decoded together"},
            },
            join(sampling_flags(), backend_flags())),
       cmd_run},
      {"serve",
       "Serve the model over HTTP with an OpenAI-compatible API (POST /v1/chat/completions, /v1/completions,\n"
       "streamed as server-sent events or whole; GET /v1/models, /health, /metrics; POST /tokenize, /detokenize)\n"
       "and a chat page at /. Requests are batched continuously over a paged KV cache that shares common prompt\n"
       "prefixes; beyond --parallel running and --queue waiting requests the server answers 429. SIGTERM finishes\n"
       "running requests, then exits. See docs/serve.md.",
       join({
                {"model", 'm', K::String, "MODEL", "", kModelHelp},
                {"tokenizer", 'z', K::String, "TOKENIZER", "", "tokenizer file; default: the model's own"},
                {"host", 0, K::String, "HOST", "127.0.0.1", "address to listen on (loopback unless given)"},
                {"port", 0, K::Int, "PORT", "8080", "TCP port; 0 = any free port (printed on stderr)"},
                {"parallel", 0, K::Int, "N", "4", "sequences decoded together (slots)"},
                {"ctx", 'c', K::Int, "C", "0", "context length per sequence; 0 = the model's, at most 2048"},
                {"queue", 0, K::Int, "N", "64", "requests that may wait for a slot; more get 429"},
                {"prefill-chunk", 0, K::Int, "N", "32", "most prompt tokens of one sequence per batched step"},
                {"no-prefix-cache", 0, K::Bool, "", "", "do not share KV blocks of identical prompt prefixes"},
                {"api-key", 0, K::String, "KEY", "", "require 'Authorization: Bearer KEY' on /v1/*, /tokenize, /detokenize"},
                {"max-body", 0, K::Int, "BYTES", "1048576", "largest request body; larger ones get 413"},
                {"template", 0, K::String, "NAME", "", "chat template: chatml, llama2, llama3, mistral (default: from the model)"},
            },
            backend_flags()),
       cmd_serve},
      {"chat",
       "Chat with an instruct model: one message per line on stdin, the reply streams to stdout. The KV cache\n"
       "is kept between turns, so only each new turn is prefilled. /reset starts over; Ctrl-D quits.",
       join({
                {"model", 'm', K::String, "MODEL", "", kModelHelp},
                {"tokenizer", 'z', K::String, "TOKENIZER", "", "tokenizer file; default: the model's own"},
                {"system", 0, K::String, "TEXT", "", "system prompt (default: the template's own, if any)"},
                {"template", 0, K::String, "NAME", "", "chat template: chatml, llama2, llama3, mistral (default: from the model)"},
                {"n-predict", 'n', K::Int, "N", "512", "most tokens per reply"},
                {"ctx", 'c', K::Int, "C", "0", "context length (KV cache size); 0 = the model's, at most 4096"},
                {"quiet", 'q', K::Bool, "", "", "no banner, prompts or statistics on stderr"},
            },
            join(sampling_flags(), backend_flags())),
       cmd_chat},
      {"perplexity",
       "Perplexity of the model on a text file, scored as llama.cpp's perplexity tool does: chunks of --ctx\n"
       "tokens, each from an empty cache, the second half of each chunk scored.",
       join({
                {"model", 'm', K::String, "MODEL", "", kModelHelp},
                {"tokenizer", 'z', K::String, "TOKENIZER", "", "tokenizer file; default: the model's own"},
                {"file", 'f', K::String, "FILE", "", "text file to score (required)"},
                {"ctx", 'c', K::Int, "C", "512", "tokens per chunk"},
            },
            backend_flags()),
       cmd_perplexity},
      {"tokenize",
       "Print the token ids of a text, space separated, on one line.",
       {
           {"model", 'm', K::String, "MODEL_OR_TOKENIZER", "",
            "GGUF (full or vocab-only), tokenizer.bin, tokenizer.json or a Hugging Face folder (required)"},
           {"prompt", 'p', K::String, "TEXT", "", "text to tokenize"},
           {"file", 'f', K::String, "FILE", "", "read the text from FILE instead"},
           {"no-bos", 0, K::Bool, "", "", "do not prepend the BOS token (prepended when the tokenizer asks for it)"},
           {"special", 0, K::Bool, "", "", "special tokens written in the text (<|im_start|>, <s>) become their ids"},
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
       join({
           {"model", 'm', K::String, "MODEL", "", "model file (required)"},
           {"ids", 0, K::String, "IDS", "", "token ids, space or comma separated (required)"},
           {"output", 'o', K::String, "FILE", "", "output file (required)"},
           {"prefill", 0, K::Bool, "", "", "process all ids in one forward call instead of one at a time"},
       },
       backend_flags("reference")),
       cmd_logits},
      {"quantize",
       "Convert a model's weight matrices to TYPE (F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K) and write a GGUF file.\n"
       "IN is a GGUF (metadata and tokenizer are copied) or a llama2.c .bin. 1-D tensors are written as F32;\n"
       "matrices whose row length is not a multiple of TYPE's block size keep their type (each is listed).",
       {
           {"threads", 't', K::Int, "N", "0", "threads converting large tensors; 0 = one per core"},
       },
       cmd_quantize,
       "IN OUT TYPE"},
      {"convert",
       "Write a model as a GGUF llama file. IN is a Hugging Face folder (config.json + *.safetensors), a GGUF\n"
       "or a llama2.c .bin; Q/K rows are permuted into GGUF's RoPE pair order where needed, so the output\n"
       "gives the same logits as IN.",
       {
           {"type", 't', K::String, "TYPE", "", "f32, f16 or bf16 for matrices (1-D tensors become F32); "
                                                 "default: keep each tensor's type"},
       },
       cmd_convert,
       "IN OUT"},
      {"estimate",
       "Analytical roofline of a model on some hardware for a workload: per-op FLOPs, bytes, arithmetic\n"
       "intensity and bound for the prefill and a decode step; TTFT, TPOT, latency, throughput and memory.\n"
       "MODEL is a file (GGUF, llama2.c .bin), a Hugging Face folder, or a preset: llama-3-8b, llama-2-7b,\n"
       "mistral-7b, llama-3.2-1b, tinyllama-1.1b, smollm2-135m, stories15M, stories110M. `--list` shows the\n"
       "presets and their sources; docs/estimator.md explains the model.",
       {
           {"model", 'm', K::String, "MODEL", "", "model file, Hugging Face folder or preset name"},
           {"hw", 0, K::String, "HW", "host", "hardware: a100-80gb-pcie, a100-80gb-sxm, h100-sxm, h100-pcie, h200, "
                                             "rtx-4090, rtx-4080-super, or host (this machine, by tern hwprobe)"},
           {"hw-file", 0, K::String, "FILE", "", "hwprobe results for --hw host (default ~/.cache/tern/hwprobe.json; "
                                                 "measured and saved there when missing)"},
           {"example", 0, K::String, "NAME", "", "named workload: reference = llama-3-8b f16 on a100-80gb-pcie, "
                                                 "batch 8, 2048 prompt + 2048 output tokens, flash"},
           {"weights", 0, K::String, "TYPE", "", "weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k..q6_k "
                                                 "(preset default f16; a file's own types unless given)"},
           {"kv", 0, K::String, "TYPE", "", "KV cache type (default: activation type on GPUs, f32 on the host)"},
           {"act", 0, K::String, "TYPE", "", "activation type: f32, f16, bf16 (default: f16 on GPUs, f32 on the host)"},
           {"compute", 0, K::String, "ROOF", "", "peak the matmuls run at: f32, f16, bf16, int8 (default: from weights)"},
           {"batch", 'b', K::Int, "N", "1", "concurrent sequences"},
           {"prompt", 'p', K::Int, "N", "512", "prompt tokens per sequence"},
           {"output", 'n', K::Int, "N", "128", "output tokens per sequence"},
           {"attn", 0, K::String, "KIND", "flash", "attention: flash or naive (score matrix through memory)"},
           {"chunk", 0, K::Int, "N", "0", "prefill chunk: prompt tokens per forward call; 0 = the whole prompt"},
           {"assume", 0, K::String, "SET", "tern", "modelling assumptions: tern, or llm-workload (the published "
                                                   "estimator's; see docs/estimator.md)"},
           {"no-causal", 0, K::Bool, "", "", "every query attends to every key of the prompt"},
           {"expand-kv", 0, K::Bool, "", "", "stream K/V once per query head (no GQA reuse)"},
           {"logits-all", 0, K::Bool, "", "", "classifier on every prompt token, not only the last"},
           {"embed-matmul", 0, K::Bool, "", "", "embedding as a one-hot matmul instead of a row gather"},
           {"decode-stride", 0, K::Int, "N", "1", "model every Nth decode step and average those"},
           {"flash-block", 0, K::Int, "N", "128", "query rows per flash-attention tile (K/V streamed once per tile)"},
           {"mem-eff", 0, K::Float, "F", "1.0", "fraction of the memory bandwidth reached"},
           {"flop-eff", 0, K::Float, "F", "1.0", "fraction of the peak FLOP/s reached"},
           {"ceilings", 0, K::String, "KIND", "peaks", "what bounds the matmuls: peaks (the hardware's) or kernels "
                                                      "(tern's matmul per weight type, as tern hwprobe measured it)"},
           {"probe-shapes", 0, K::Bool, "", "", "measure tern's matmul on each of the model's own weight shapes now "
                                                 "(host only; implies --ceilings kernels) and bound each matmul by "
                                                 "its shape's ceilings; with --validate, before each model's run"},
           {"json", 0, K::Bool, "", "", "print JSON instead of the text report"},
           {"svg", 0, K::String, "FILE", "", "also write the roofline chart as SVG"},
           {"list", 0, K::Bool, "", "", "list model and hardware presets with their sources"},
           {"validate", 0, K::Bool, "", "", "predicted (under both ceilings) vs `tern bench` prefill and decode "
                                             "tok/s for model files here"},
           {"validate-models", 0, K::String, "FILES", "", "comma-separated model files for --validate"},
           {"bench-args", 0, K::String, "ARGS", "-m {model} -p {prompt} -n {output} --json",
            "arguments of `tern bench` for --validate ({model}, {prompt}, {output} are filled in)"},
       },
       cmd_estimate},
      {"hwprobe",
       "Measure this machine for the roofline: memory bandwidth (read, copy, triad; all threads), peak FLOP/s\n"
       "of each ISA path the CPU has (scalar, AVX2 FMA, AVX-512 FMA, AVX-512 BF16, AVX-512 VNNI int8), cores and\n"
       "caches, and the ceilings of tern's own CPU matmul per weight type (GEMM ops/s, streaming GEMV GB/s;\n"
       "for `tern estimate --ceilings kernels`). Saves the results as JSON for `tern estimate --hw host`.",
       {
           {"quick", 0, K::Bool, "", "", "a second or two: smaller arrays, shorter loops, smaller matmuls"},
           {"threads", 't', K::Int, "N", "0", "threads to measure with; 0 = every logical CPU"},
           {"gemm-shape", 0, K::String, "RxCxT", "", "the matmul kernels' GEMM: R x C weights, T tokens (default "
                                                    "1024x2048x128; types whose blocks do not divide C are left out)"},
           {"output", 'o', K::String, "FILE", "", "where to save (default ~/.cache/tern/hwprobe.json)"},
           {"no-save", 0, K::Bool, "", "", "do not save the results"},
           {"json", 0, K::Bool, "", "", "print the JSON instead of the text report"},
       },
       cmd_hwprobe},
      {"bench",
       "Measure prefill and decode speed: tok/s (mean +- sd over repetitions after a warm-up), ms per token,\n"
       "achieved GB/s and % of the memory roofline (bytes streamed per token from perf/accounting.h over the\n"
       "bandwidth `tern hwprobe` measured), peak RSS and load time. The prompt is seeded random token ids.",
       join({
           {"model", 'm', K::String, "MODEL", "", "model file (GGUF, llama2.c .bin, Hugging Face folder)"},
           {"prompt", 'p', K::Int, "N", "512", "prompt tokens, prefilled in one forward call"},
           {"n-gen", 'n', K::Int, "N", "128", "tokens decoded one at a time (greedy)"},
           {"repetitions", 'r', K::Int, "N", "5", "counted repetitions (after one warm-up)"},
           {"no-warmup", 0, K::Bool, "", "", "count the first repetition too"},
           {"chunk", 0, K::Int, "N", "256", "prompt tokens per forward call of the prefill"},
           {"seed", 's', K::UInt64, "S", "1234", "seed of the random prompt ids"},
           {"hw-file", 0, K::String, "FILE", "", "hwprobe results for the roofline (default ~/.cache/tern/hwprobe.json; "
                                                 "without one the roofline columns are left out)"},
           {"no-roofline", 0, K::Bool, "", "", "do not read hwprobe results; leave the roofline columns out"},
           {"json", 0, K::Bool, "", "", "print JSON instead of the table"},
           {"op-times", 0, K::Bool, "", "", "also time every backend op (warm-up included) and print where a decode "
                                            "step's and the prefill's time goes"},
       },
       backend_flags()),
       cmd_bench},
      {"synth",
       "Write a random-weight GGUF model of a real shape (stories15M, stories110M, SmolLM2-135M, TinyLlama-1.1B,\n"
       "Llama-3.2-1B, Llama-2-7B, Llama-3-8B, Mistral-7B) with a synthetic SentencePiece vocabulary, which\n"
       "tern and llama.cpp load; for benchmarks and tests. Matrices N(0, 0.02), norms 1; written tensor by tensor.",
       {
           {"shape", 0, K::String, "NAME", "", "model shape (required)"},
           {"type", 0, K::String, "TYPE", "F16", "matrix type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K"},
           {"output", 'o', K::String, "FILE", "", "output GGUF file (required)"},
           {"seed", 's', K::UInt64, "S", "0", "seed of the weights"},
           {"layers", 0, K::Int, "N", "0", "override the layer count (quick tests of big shapes); 0 = the shape's"},
           {"threads", 't', K::Int, "N", "0", "threads generating each tensor; 0 = one per core"},
       },
       cmd_synth},
  };
  return table;
}

int fail(const char* command, const std::string& message) {
  std::fprintf(stderr, "tern %s: %s\n", command, message.c_str());
  return 1;
}

}  // namespace tern::cli
