// safetensors reader/writer: round trips, sharding, and every malformed-file case giving a clear error.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/fileio.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace dseek {
namespace {

Tensor iota(DType dt, Shape s) {
  Tensor f = Tensor::empty(DType::F32, s);
  for (int64_t i = 0; i < f.numel(); i++) f.f32()[i] = float(i) * 0.5f - 3.0f;
  return dt == DType::F32 ? f : f.to(dt);
}

std::string bytes_of(const std::string& path) { return read_file(path); }
void write_bytes(const std::string& path, const std::string& b) {
  std::ofstream(path, std::ios::binary).write(b.data(), std::streamsize(b.size()));
}

// A file with a hand-written header (data section of `data_bytes` zero bytes).
std::string with_header(const test::TempDir& d, const std::string& header, size_t data_bytes) {
  std::string b(8, '\0');
  uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  b += header;
  b += std::string(data_bytes, '\0');
  std::string p = d / "f.safetensors";
  write_bytes(p, b);
  return p;
}

void expect_error(const std::string& path, const std::string& fragment) {
  try {
    SafetensorsFile::open(path);
    FAIL() << "no error for " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "error must name the file: " << e.what();
  }
}

TEST(Safetensors, RoundTripAllDtypes) {
  test::TempDir d;
  NamedTensors ts{{"a", iota(DType::F32, {3, 5})}, {"b", iota(DType::BF16, {7})}, {"c", iota(DType::F16, {2, 2, 2})}};
  Tensor i32 = Tensor::empty(DType::I32, {4});
  for (int i = 0; i < 4; i++) i32.as<int32_t>()[i] = i * 7 - 3;
  ts.emplace_back("d", i32);
  save_safetensors(d / "x.safetensors", ts, {{"format", "pt"}});
  SafetensorsFile f = SafetensorsFile::open(d / "x.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const auto& [name, t] : ts) {
    Tensor r = f.get(name);
    ASSERT_EQ(r.dtype, t.dtype);
    ASSERT_EQ(r.shape, t.shape);
    EXPECT_EQ(0, std::memcmp(r.data, t.data, t.nbytes())) << name;
  }
  // header length is a multiple of 8 so the data section is aligned
  std::string b = bytes_of(d / "x.safetensors");
  uint64_t n;
  std::memcpy(&n, b.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
}

TEST(Safetensors, ShardedDirectoryWithIndex) {
  test::TempDir d;
  NamedTensors ts;
  for (int i = 0; i < 6; i++) ts.emplace_back("t" + std::to_string(i), iota(DType::F32, {64, 16}));
  save_safetensors_dir(d.str(), ts, 3 * 64 * 16 * 4);  // three tensors per shard
  EXPECT_TRUE(file_exists(d / "model.safetensors.index.json"));
  EXPECT_TRUE(file_exists(d / "model-00001-of-00002.safetensors"));
  WeightFiles w = WeightFiles::open(d.str());
  EXPECT_EQ(w.names().size(), 6u);
  Tensor t5 = w.get("t5");
  EXPECT_EQ(t5.f32()[3], 3 * 0.5f - 3.0f);
  EXPECT_THROW(w.get("nope"), Error);
}

TEST(Safetensors, WeightsAreReadResidentUnlessDseekMmapForcesAMap) {
  test::TempDir d;
  NamedTensors ts{{"w", iota(DType::BF16, {300, 77})}, {"b", iota(DType::F32, {13})}};
  save_safetensors(d / "model.safetensors", ts);
  const std::string bytes = bytes_of(d / "model.safetensors");
  for (const char* mode : {"0", "1"}) {
    setenv("DSEEK_MMAP", mode, 1);
    std::shared_ptr<MappedFile> m = map_file(d / "model.safetensors", FileAccess::ResidentIfFits);
    EXPECT_EQ(m->resident, std::string(mode) == "0");
    if (m->resident) EXPECT_EQ(reinterpret_cast<uintptr_t>(m->data) % (2u << 20), 0u);  // huge-page aligned
    ASSERT_EQ(m->size, bytes.size());
    EXPECT_EQ(0, std::memcmp(m->data, bytes.data(), bytes.size())) << mode;
    WeightFiles w = WeightFiles::open(d.str());
    for (const auto& [name, t] : ts) EXPECT_EQ(0, std::memcmp(w.get(name).data, t.data, t.nbytes())) << name;
  }
  unsetenv("DSEEK_MMAP");
  EXPECT_FALSE(map_file(d / "model.safetensors")->resident);  // other files stay mapped
}

TEST(Safetensors, AtomicWriteLeavesNoTemporaryFiles) {
  test::TempDir d;
  save_safetensors(d / "x.safetensors", {{"a", iota(DType::F32, {2})}});
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(d.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(SafetensorsBadInput, TooSmall) {
  test::TempDir d;
  write_bytes(d / "f.safetensors", "abc");
  expect_error(d / "f.safetensors", "too small");
}

TEST(SafetensorsBadInput, HeaderLengthBeyondFile) {
  test::TempDir d;
  std::string b(8, '\0');
  uint64_t n = 1000;
  std::memcpy(b.data(), &n, 8);
  b += "{}";
  write_bytes(d / "f.safetensors", b);
  expect_error(d / "f.safetensors", "exceeds the file size");
}

TEST(SafetensorsBadInput, HeaderNotJson) {
  test::TempDir d;
  expect_error(with_header(d, "{\"a\": [1, 2", 0), "not valid JSON");
}

TEST(SafetensorsBadInput, UnknownDtype) {
  test::TempDir d;
  expect_error(with_header(d, R"({"w":{"dtype":"F7","shape":[2],"data_offsets":[0,2]}})", 2), "unknown dtype 'F7'");
}

TEST(SafetensorsBadInput, SizeDisagreesWithShape) {
  test::TempDir d;
  expect_error(with_header(d, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}})", 8), "need 16");
}

TEST(SafetensorsBadInput, OffsetsBeyondData) {
  test::TempDir d;
  expect_error(with_header(d, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), "exceeds the data section");
}

TEST(SafetensorsBadInput, OffsetsReversedNegativeOrMissing) {
  test::TempDir d;
  expect_error(with_header(d, R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8), "begin 8 > end 0");
  expect_error(with_header(d, R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 8), "data_offsets");
  expect_error(with_header(d, R"({"w":{"dtype":"F32","shape":[1]}})", 8), "data_offsets");
  expect_error(with_header(d, R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 8), "shape");
  expect_error(with_header(d, R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 8), "too large");
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  test::TempDir d;
  expect_error(with_header(d, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
               "overlap");
}

TEST(SafetensorsBadInput, TruncatedRealFile) {
  test::TempDir d;
  save_safetensors(d / "x.safetensors", {{"a", iota(DType::F32, {100})}});
  std::string b = bytes_of(d / "x.safetensors");
  write_bytes(d / "x.safetensors", b.substr(0, b.size() - 10));
  expect_error(d / "x.safetensors", "truncated");
}

// Random corruption of a valid file never crashes or reads out of bounds: open either succeeds (and every
// tensor lies inside the file) or throws dseek::Error.
TEST(SafetensorsBadInput, RandomCorruptionNeverCrashes) {
  test::TempDir d;
  save_safetensors(d / "x.safetensors", {{"alpha", iota(DType::F32, {8, 4})}, {"beta", iota(DType::BF16, {16})}});
  const std::string good = bytes_of(d / "x.safetensors");
  std::mt19937 rng(1234);
  int errors = 0, ok = 0;
  for (int trial = 0; trial < 3000; trial++) {
    std::string b = good;
    const int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; e++) {
      size_t pos = rng() % std::min<size_t>(b.size(), 8 + 160);  // mostly the header
      b[pos] = char(rng() % 256);
    }
    if (rng() % 5 == 0) b.resize(rng() % b.size());
    write_bytes(d / "c.safetensors", b);
    try {
      SafetensorsFile f = SafetensorsFile::open(d / "c.safetensors");
      for (const auto& n : f.names()) {
        Tensor t = f.get(n);
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < t.nbytes(); i++) sink ^= static_cast<const uint8_t*>(t.data)[i];
      }
      ok++;
    } catch (const Error&) {
      errors++;
    }
  }
  EXPECT_GT(errors, 100);
  EXPECT_GT(ok + errors, 2999);
}

TEST(SafetensorsBadInput, IndexPointingOutsideFolderOrAtMissingFile) {
  test::TempDir d;
  write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map":{"a":"../../etc/passwd"}})");
  EXPECT_THROW(WeightFiles::open(d.str()), Error);
  write_file_atomic(d / "model.safetensors.index.json", R"({"weight_map":{"a":"model-00001-of-00001.safetensors"}})");
  try {
    WeightFiles::open(d.str());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model-00001-of-00001.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dseek
