// Progress numbers: the MFU peak is measured once per machine and cached, and MFU never exceeds 100%; tokens/s
// and the ETA come from a moving window of steps.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "test_util.h"
#include "train/peak_flops.h"
#include "train/run_loop.h"

namespace dseek {
namespace {

TEST(Progress, MovingWindowAveragesTheLastN) {
  MovingWindow w(3);
  EXPECT_EQ(w.mean(), 0.0);
  w.push(10);
  EXPECT_EQ(w.mean(), 10.0);
  for (double v : {1.0, 2.0, 3.0}) w.push(v);
  EXPECT_EQ(w.mean(), 2.0);  // 10 has left the window
  w.push(9);
  EXPECT_EQ(w.mean(), (2.0 + 3.0 + 9.0) / 3);
}

TEST(Progress, PeakFlopsIsCachedAndMfuNeverExceedsOne) {
  test::TempDir d;
  ::setenv("DSEEK_CACHE_DIR", d.str().c_str(), 1);
  PeakFlops first(Precision::F32);
  ASSERT_GT(first.value(), 1e8);  // any machine this runs on does more than 0.1 GFLOP/s
  const auto cache = nlohmann::json::parse(read_file(d / "peak_flops.json"));
  ASSERT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.begin().value().get<double>(), first.value());
  // a second run reads the cached value instead of measuring (a busy machine cannot lower it)
  write_file_atomic(d / "peak_flops.json", nlohmann::json{{cache.begin().key(), 1000.0}}.dump());
  PeakFlops cached(Precision::F32);
  EXPECT_EQ(cached.value(), 1000.0);
  EXPECT_DOUBLE_EQ(cached.utilisation(250.0), 0.25);
  // faster than the peak: the peak rises to it, so utilisation is 1, and the raised peak is cached
  EXPECT_DOUBLE_EQ(cached.utilisation(4000.0), 1.0);
  EXPECT_DOUBLE_EQ(cached.utilisation(1000.0), 0.25);
  EXPECT_EQ(PeakFlops(Precision::F32).value(), 4000.0);
  ::unsetenv("DSEEK_CACHE_DIR");
}

}  // namespace
}  // namespace dseek
