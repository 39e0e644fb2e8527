// The roofline chart of an estimate as a self-contained SVG (opens in any browser): log-log axes of
// arithmetic intensity against FLOP/s, the memory roof and one compute roof per type the ops use, and every
// op of the prefill (circles) and of the mean decode step (squares) as a point on its roof, with a tooltip of
// its figures.
#pragma once

#include <string>

#include "perf/estimator.h"

namespace tern::perf {

std::string roofline_svg(const Estimate& e);

}  // namespace tern::perf
