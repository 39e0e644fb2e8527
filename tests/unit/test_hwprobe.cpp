// hwprobe (perf/hwprobe.h) in its --quick mode: plausible figures, the JSON round trip, and the host
// Hardware built from it.
#include <gtest/gtest.h>

#include "perf/hwprobe.h"
#include "test_util.h"

namespace {

using namespace tern::perf;

const HwprobeResult& quick_probe() {
  static const HwprobeResult r = [] {
    HwprobeOptions o;
    o.quick = true;
    auto p = run_hwprobe(o);
    EXPECT_TRUE(p.ok()) << p.message();
    return p.ok() ? p.value() : HwprobeResult();
  }();
  return r;
}

TEST(Hwprobe, QuickProbeIsPlausible) {
  const HwprobeResult& r = quick_probe();
  EXPECT_GE(r.logical_cpus, 1);
  EXPECT_GE(r.physical_cores, 1);
  EXPECT_GE(r.threads, 1);
  EXPECT_GT(r.mem_total_bytes, int64_t{1} << 28);
  // Anything from a slow sanitizer build to a big server: 100 MB/s .. 10 TB/s.
  for (double bw : {r.read_bw, r.read_bw_one_thread, r.copy_bw, r.triad_bw}) {
    EXPECT_GT(bw, 1e8);
    EXPECT_LT(bw, 1e13);
  }
  ASSERT_FALSE(r.peaks.empty());
  EXPECT_EQ(r.peaks.front().path, "scalar_f32");  // always there
  for (const PeakPath& p : r.peaks) {
    EXPECT_GT(p.one_thread, 1e7) << p.path;
    EXPECT_GT(p.all_threads, 0) << p.path;
  }
  EXPECT_GT(r.best_peak("f32"), 0);
  EXPECT_LT(r.seconds, 30);
}

TEST(Hwprobe, JsonRoundTripAndHardware) {
  const HwprobeResult& r = quick_probe();
  auto back = hwprobe_from_json(hwprobe_to_json(r), "mem");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->cpu_model, r.cpu_model);
  EXPECT_EQ(back->caches.size(), r.caches.size());
  EXPECT_DOUBLE_EQ(back->read_bw, r.read_bw);
  ASSERT_EQ(back->peaks.size(), r.peaks.size());
  EXPECT_DOUBLE_EQ(back->peaks.back().all_threads, r.peaks.back().all_threads);

  const std::string path = tern_test::temp_dir() + "/sub/dir/hwprobe.json";
  ASSERT_TRUE(save_hwprobe(r, path).ok());
  auto loaded = load_hwprobe(path);
  ASSERT_TRUE(loaded.ok()) << loaded.message();

  const Hardware hw = hardware_from_hwprobe(loaded.value(), path);
  EXPECT_EQ(hw.key, "host");
  EXPECT_FALSE(hw.gpu);
  EXPECT_DOUBLE_EQ(hw.mem_bandwidth, r.read_bw);
  EXPECT_DOUBLE_EQ(hw.peak_flops(Compute::F32), r.best_peak("f32"));
  EXPECT_EQ(hw.has(Compute::INT8), r.best_peak("int8") > 0);
  EXPECT_NE(hw.source.find(path), std::string::npos);
  EXPECT_NE(format_hwprobe(r).find("ridge point"), std::string::npos);
}

TEST(Hwprobe, BadFiles) {
  EXPECT_NE(hwprobe_from_json("not json", "f.json").message().find("f.json"), std::string::npos);
  EXPECT_NE(hwprobe_from_json("{\"tern_hwprobe\": 1}", "f.json").message().find("lacks the read bandwidth"),
            std::string::npos);
  EXPECT_FALSE(load_hwprobe("/nonexistent/hwprobe.json").ok());
}

}  // namespace
