// The subcommands of `tern`, each in its own file, and the one table that declares their flags.
#pragma once

#include <string>
#include <vector>

#include "flags.h"

namespace tern::cli {

int cmd_run(const Args& a);
int cmd_chat(const Args& a);
int cmd_perplexity(const Args& a);
int cmd_tokenize(const Args& a);
int cmd_info(const Args& a);
int cmd_logits(const Args& a);
int cmd_quantize(const Args& a);
int cmd_convert(const Args& a);
int cmd_estimate(const Args& a);
int cmd_hwprobe(const Args& a);
int cmd_bench(const Args& a);
int cmd_synth(const Args& a);
int cmd_serve(const Args& a);
int cmd_run_batch(const Args& a);  // run --batch-file: the batched engine (cmd_serve.cpp)

const std::vector<CommandSpec>& commands();

// Prints "tern <command>: <message>" on one line to stderr and returns the exit code 1.
int fail(const char* command, const std::string& message);

}  // namespace tern::cli
