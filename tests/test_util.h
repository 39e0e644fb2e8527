// Helpers shared by the tests: where the shared model files are, and how to run the tern binary.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace tern_test {

// Absolute path of ../shared/<rel> (beside the project). Empty if the file does not exist.
std::string shared_path(const std::string& rel);

// True when running under CI (environment CI=true): then missing shared files are failures, not skips.
bool in_ci();

// Path to a scratch directory for this test binary (created on demand).
std::string temp_dir();

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

struct CmdResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs the tern executable with the given arguments (each shell-quoted), capturing stdout and stderr.
// `env` holds extra environment assignments ("NAME=value") for that one run.
CmdResult run_tern(const std::vector<std::string>& args, const std::string& stdin_text = "",
                   const std::vector<std::string>& env = {});

}  // namespace tern_test

// Resolves a shared file into `var`, or skips the test (fails under CI) when it is absent.
#define TERN_REQUIRE_SHARED(var, rel)                                                   \
  std::string var = ::tern_test::shared_path(rel);                                      \
  if (var.empty()) {                                                                    \
    if (::tern_test::in_ci()) FAIL() << "missing ../shared/" << (rel) << " under CI=true"; \
    GTEST_SKIP() << "../shared/" << (rel) << " not present";                            \
  }
