// TimedBackend: forwards every op to the backend it wraps (results bit-identical) and adds each call's time
// to its op, by weight role and phase (one token: decode; more: prefill).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/timed_backend.h"
#include "core/rng.h"
#include "ops/op_inputs.h"

namespace tern {
namespace {

TEST(TimedBackend, WeightRoles) {
  EXPECT_EQ(weight_role("blk.3.ffn_down.weight"), "ffn_down");
  EXPECT_EQ(weight_role("blk.12.attn_q.weight"), "attn_q");
  EXPECT_EQ(weight_role("output.weight"), "output");
  EXPECT_EQ(weight_role("output_norm.weight"), "output_norm");
  EXPECT_EQ(weight_role("probe"), "probe");
}

TEST(TimedBackend, ForwardsAndTimesByOpAndPhase) {
  auto inner = make_backend("reference", 1);
  ASSERT_TRUE(inner.ok());
  auto plain = make_backend("reference", 1);
  ASSERT_TRUE(plain.ok());
  TimedBackend timed(*inner.value());
  EXPECT_STREQ(timed.name(), "reference");

  test_ops::Weights w = test_ops::make_weights(DType::Q8_0, 48, 64, 7);
  w.view.name = "blk.1.ffn_down.weight";
  Rng rng(3);
  const std::vector<float> x = test_ops::random_floats(rng, 3 * 64);
  std::vector<float> got(3 * 48), want(3 * 48);
  timed.matmul(w.view, x.data(), 1, got.data());
  timed.matmul(w.view, x.data(), 1, got.data());
  timed.matmul(w.view, x.data(), 3, got.data());
  plain.value()->matmul(w.view, x.data(), 3, want.data());
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)));

  const auto decode = timed.totals(true), prefill = timed.totals(false);
  ASSERT_EQ(decode.size(), 1u);
  EXPECT_EQ(decode[0].op, "matmul ffn_down");
  EXPECT_EQ(decode[0].calls, 2);
  EXPECT_GT(decode[0].seconds, 0);
  ASSERT_EQ(prefill.size(), 1u);
  EXPECT_EQ(prefill[0].calls, 1);
  timed.reset();
  EXPECT_TRUE(timed.totals(true).empty());
}

}  // namespace
}  // namespace tern
