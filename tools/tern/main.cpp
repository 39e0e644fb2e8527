// tern: the command line. Parses the subcommand and its flags from the table in commands.cpp and calls it.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

using namespace tern::cli;

static void usage(FILE* out) {
  std::fprintf(out, "usage: tern <command> [flags]\n\ncommands:\n");
  for (const auto& c : commands()) {
    std::string first_line(c.summary);
    first_line = first_line.substr(0, first_line.find('\n'));
    std::fprintf(out, "  %-10s %s\n", c.name, first_line.c_str());
  }
  std::fprintf(out, "\n`tern <command> --help` lists a command's flags.\n");
}

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    usage(stdout);
    return 0;
  }
  for (const auto& c : commands()) {
    if (name != c.name) continue;
    std::vector<std::string> rest(argv + 2, argv + argc);
    for (const auto& r : rest)
      if (r == "-h" || r == "--help") {
        std::fputs(help_text(c).c_str(), stdout);
        return 0;
      }
    auto args = Args::parse(c, rest);
    if (!args) return fail(c.name, args.message());
    return c.run(args.value());
  }
  std::fprintf(stderr, "tern: unknown command '%s' (run `tern --help` for the list)\n", name.c_str());
  return 1;
}
