// HugePageArena: aligned, disjoint, zeroed allocations that live as long as the arena; larger-than-slab
// allocations get a map of their own; and where the kernel offers transparent huge pages on request, the
// memory is backed by them.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/huge_arena.h"

namespace tern {
namespace {

TEST(HugePageArena, AllocationsAreAlignedDisjointAndZeroed) {
  HugePageArena arena(size_t{4} << 20);
  struct Got {
    uint8_t* p;
    size_t n;
  };
  std::vector<Got> got;
  // Sizes that are not multiples of 64, one larger than a slab, and enough to need several slabs.
  for (size_t n : {size_t{1}, size_t{100}, size_t{4096}, size_t{3} << 20, size_t{9} << 20, size_t{777},
                   size_t{2} << 20}) {
    uint8_t* p = arena.allocate(n);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % HugePageArena::kAlign, 0u);
    for (size_t i = 0; i < n; i += 509) ASSERT_EQ(p[i], 0) << n;
    std::memset(p, 0xA5, n);
    got.push_back({p, n});
  }
  for (size_t i = 0; i < got.size(); ++i)
    for (size_t j = 0; j < got.size(); ++j)
      if (i != j) {
        const bool apart = got[i].p + got[i].n <= got[j].p || got[j].p + got[j].n <= got[i].p;
        EXPECT_TRUE(apart) << i << " overlaps " << j;
      }
  // Writing each did not disturb another.
  for (const Got& g : got)
    for (size_t i = 0; i < g.n; i += 4093) ASSERT_EQ(g.p[i], 0xA5);
  EXPECT_GE(arena.allocated(), (size_t{14} << 20));
  EXPECT_GE(arena.mapped(), arena.allocated());
}

// The kernel's THP mode: "always", "madvise" or "never" (the bracketed word), empty when unknown.
std::string thp_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(f, s);
  const size_t a = s.find('['), b = s.find(']');
  return a == std::string::npos || b == std::string::npos ? "" : s.substr(a + 1, b - a - 1);
}

// kB of AnonHugePages in the mapping of /proc/self/smaps that contains p; -1 when not found.
long anon_huge_kb(const void* p) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  while (std::getline(f, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= a && a < hi;
      continue;
    }
    if (inside && line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
  }
  return -1;
}

TEST(HugePageArena, IsBackedByHugePagesWhereTheKernelOffersThem) {
  const std::string mode = thp_mode();
  if (mode != "madvise" && mode != "always")
    GTEST_SKIP() << "transparent huge pages are '" << mode << "' on this machine";
  HugePageArena arena;
  const size_t n = size_t{16} << 20;
  uint8_t* p = arena.allocate(n);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, n);
  const long kb = anon_huge_kb(p);
  ASSERT_GE(kb, 0) << "no mapping in /proc/self/smaps holds the allocation";
  // At least half of it: the kernel may fall back to small pages where it finds no free 2 MiB run.
  EXPECT_GE(kb, static_cast<long>(n / 2 / 1024));
}

}  // namespace
}  // namespace tern
