#include "test_util.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace tern_test {

static bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::string shared_path(const std::string& rel) {
  std::string p = std::string(TERN_SOURCE_DIR) + "/../shared/" + rel;
  return exists(p) ? p : std::string();
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

std::string temp_dir() {
  std::string d = std::string(TERN_BINARY_DIR) + "/test_tmp";
  ::mkdir(d.c_str(), 0755);
  d += "/" + std::to_string(::getpid());
  ::mkdir(d.c_str(), 0755);
  return d;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

static std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

CmdResult run_tern(const std::vector<std::string>& args, const std::string& stdin_text,
                   const std::vector<std::string>& env) {
  static int counter = 0;
  std::string dir = temp_dir();
  std::string base = dir + "/cmd" + std::to_string(counter++);
  write_file(base + ".in", stdin_text);
  std::string cmd;
  if (!env.empty()) {
    cmd = "env";
    for (const auto& e : env) cmd += " " + quote(e);
    cmd += " ";
  }
  cmd += quote(TERN_EXE);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " <" + quote(base + ".in") + " >" + quote(base + ".out") + " 2>" + quote(base + ".err");
  int rc = std::system(cmd.c_str());
  CmdResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
  r.out = read_file(base + ".out");
  r.err = read_file(base + ".err");
  return r;
}

}  // namespace tern_test
