#include "flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace tern::cli {

namespace {

Status check_value(const FlagSpec& f, const std::string& v) {
  const std::string flag = std::string("--") + f.name;
  errno = 0;
  char* end = nullptr;
  switch (f.kind) {
    case FlagKind::Int: {
      long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || errno == ERANGE || x < INT32_MIN || x > INT32_MAX)
        return error(flag + ": expected an integer, got '" + v + "'");
      break;
    }
    case FlagKind::UInt64: {
      if (v.empty() || v[0] == '-') return error(flag + ": expected a non-negative integer, got '" + v + "'");
      std::strtoull(v.c_str(), &end, 10);
      if (*end || errno == ERANGE) return error(flag + ": expected a non-negative integer, got '" + v + "'");
      break;
    }
    case FlagKind::Float: {
      double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || errno == ERANGE || !std::isfinite(x))
        return error(flag + ": expected a number, got '" + v + "'");
      break;
    }
    default: break;
  }
  return Status();
}

}  // namespace

const FlagSpec* Args::find(const std::string& name) const {
  for (const auto& f : spec_->flags)
    if (name == f.name) return &f;
  return nullptr;
}

std::string Args::raw(const std::string& name) const {
  auto it = given_.find(name);
  if (it != given_.end()) return it->second;
  const FlagSpec* f = find(name);
  return f ? f->default_value : "";
}

std::string Args::str(const std::string& name) const { return raw(name); }
int64_t Args::integer(const std::string& name) const { return std::strtoll(raw(name).c_str(), nullptr, 10); }
double Args::number(const std::string& name) const { return std::strtod(raw(name).c_str(), nullptr); }
uint64_t Args::u64(const std::string& name) const { return std::strtoull(raw(name).c_str(), nullptr, 10); }
bool Args::flag(const std::string& name) const { return given_.count(name) != 0; }

Result<Args> Args::parse(const CommandSpec& spec, const std::vector<std::string>& argv) {
  Args a;
  a.spec_ = &spec;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& tok = argv[i];
    if (tok.size() < 2 || tok[0] != '-' || tok == "--") {
      if (!*spec.positional) return error("unexpected argument '" + tok + "' (see `tern " + spec.name + " --help`)");
      a.positional_.push_back(tok);
      continue;
    }
    const FlagSpec* f = nullptr;
    std::string value;
    bool inline_value = false;
    if (tok[1] == '-') {
      std::string name = tok.substr(2);
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      f = a.find(name);
    } else if (tok.size() == 2) {
      for (const auto& s : spec.flags)
        if (s.short_name == tok[1]) f = &s;
    }
    if (!f) {
      // A negative number where a positional is allowed is not a flag.
      return error("unknown flag '" + tok + "' for `tern " + spec.name + "` (see `tern " + spec.name + " --help`)");
    }
    if (f->kind == FlagKind::Bool) {
      if (inline_value) return error(std::string("--") + f->name + " takes no value");
      a.given_[f->name] = "1";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argv.size()) return error(std::string("--") + f->name + ": missing value (" + f->metavar + ")");
      value = argv[++i];
    }
    TERN_TRY(check_value(*f, value));
    a.given_[f->name] = value;
  }
  return a;
}

std::string help_text(const CommandSpec& spec) {
  std::string s = std::string("usage: tern ") + spec.name + " [flags]";
  if (*spec.positional) s += std::string(" ") + spec.positional;
  s += "\n\n" + std::string(spec.summary) + "\n\nflags:\n";
  for (const auto& f : spec.flags) {
    std::string left = "  ";
    left += f.short_name ? std::string("-") + f.short_name + ", " : "    ";
    left += std::string("--") + f.name;
    if (f.kind != FlagKind::Bool) left += std::string(" ") + f.metavar;
    if (left.size() < 28) left.resize(28, ' ');
    else left += "  ";
    s += left + f.help;
    if (*f.default_value && f.kind != FlagKind::Bool) s += std::string(" (default: ") + f.default_value + ")";
    s += "\n";
  }
  s += "  -h, --help                print this help\n";
  return s;
}

}  // namespace tern::cli
