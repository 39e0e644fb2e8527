// The declarative flag table of the `tern` command line. Every subcommand lists its flags as data; one
// parser handles them all and produces `--help` from the same table. Errors name the flag and the value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace tern::cli {

enum class FlagKind { String, Int, Float, UInt64, Bool };

struct FlagSpec {
  const char* name;        // long name without dashes: "temp"
  char short_name;         // 'm', or 0 for none
  FlagKind kind;
  const char* metavar;     // "T" (empty for Bool)
  const char* default_value;  // as text, "" for none; used by --help and as the value when absent
  const char* help;
};

class Args;
using CommandFn = int (*)(const Args&);

struct CommandSpec {
  const char* name;
  const char* summary;
  std::vector<FlagSpec> flags;
  CommandFn run;
  const char* positional = "";  // usage text for positional arguments, "" if none are taken
};

// Parsed values of one command's flags; getters return the default when the flag was not given.
class Args {
 public:
  bool has(const std::string& name) const { return given_.count(name) != 0; }
  std::string str(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  uint64_t u64(const std::string& name) const;
  bool flag(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

  // Parses argv (after the subcommand name) against spec; validates numbers now so errors come early.
  static Result<Args> parse(const CommandSpec& spec, const std::vector<std::string>& argv);

 private:
  const CommandSpec* spec_ = nullptr;
  std::map<std::string, std::string> given_;
  std::vector<std::string> positional_;
  const FlagSpec* find(const std::string& name) const;
  std::string raw(const std::string& name) const;
};

std::string help_text(const CommandSpec& spec);

}  // namespace tern::cli
