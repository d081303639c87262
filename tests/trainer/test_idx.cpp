// The IDX reader on generated files (good, gzip, corrupt) and on the installed Fashion-MNIST.
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <fstream>

#include "data/dataset.h"
#include "data/idx.h"
#include "test_util.h"

using namespace centerloss::trainer;

namespace {

std::string idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, size_t data_bytes) {
  std::string bytes = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  for (size_t i = 0; i < data_bytes; ++i) bytes.push_back(static_cast<char>((i * 7 + 3) % 256));
  return bytes;
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string gzip(const std::string& bytes, const std::string& path) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::string kFashion = kDefaultDataDir;

}  // namespace

TEST(Idx, ReadsRawImages) {
  TempDir dir;
  write_raw(dir / "a", idx_bytes(0x08, {3, 4, 5}, 60));
  const torch::Tensor t = read_idx(dir / "a", 3);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(t.dtype(), torch::kUInt8);
  EXPECT_EQ(t.flatten()[10].item<int64_t>(), (10 * 7 + 3) % 256);
}

TEST(Idx, ReadsGzipLabelsLikeRaw) {
  TempDir dir;
  const std::string bytes = idx_bytes(0x08, {50}, 50);
  write_raw(dir / "raw", bytes);
  gzip(bytes, dir / "z.gz");
  EXPECT_TRUE(torch::equal(read_idx(dir / "raw", 1), read_idx(dir / "z.gz", 1)));
}

TEST(Idx, RejectsBadMagic) {
  TempDir dir;
  std::string bytes = idx_bytes(0x08, {4}, 4);
  bytes[0] = 0x1f;  // e.g. a text or foreign binary file
  write_raw(dir / "f", bytes);
  expect_error([&] { read_idx(dir / "f", 1); }, "bad magic");
}

TEST(Idx, RejectsOtherElementType) {
  TempDir dir;
  write_raw(dir / "f", idx_bytes(0x0D, {4}, 16));  // float32 IDX
  expect_error([&] { read_idx(dir / "f", 1); }, "element type 0x0d");
}

TEST(Idx, RejectsWrongDimensionCount) {
  TempDir dir;
  write_raw(dir / "f", idx_bytes(0x08, {10}, 10));  // a labels file where images are expected
  expect_error([&] { read_idx(dir / "f", 3); }, "has 1 dimensions, expected 3");
}

TEST(Idx, RejectsTruncatedData) {
  TempDir dir;
  write_raw(dir / "f", idx_bytes(0x08, {10, 28, 28}, 9 * 28 * 28));
  expect_error([&] { read_idx(dir / "f", 3); }, "truncated");
}

TEST(Idx, RejectsTruncatedHeader) {
  TempDir dir;
  write_raw(dir / "f", idx_bytes(0x08, {10, 28, 28}, 0).substr(0, 9));
  expect_error([&] { read_idx(dir / "f", 3); }, "truncated header");
}

TEST(Idx, RejectsTrailingBytes) {
  TempDir dir;
  write_raw(dir / "f", idx_bytes(0x08, {10}, 11));
  expect_error([&] { read_idx(dir / "f", 1); }, "size mismatch");
}

TEST(Idx, RejectsTruncatedGzip) {
  TempDir dir;
  const std::string compressed = gzip(idx_bytes(0x08, {200, 28, 28}, 200 * 28 * 28), dir / "full.gz");
  write_raw(dir / "cut.gz", compressed.substr(0, compressed.size() / 2));
  expect_error([&] { read_idx(dir / "cut.gz", 3); }, "cut.gz");
}

TEST(Idx, RejectsMissingFile) {
  expect_error([] { read_idx("/nonexistent/train-images-idx3-ubyte.gz", 3); }, "no such file");
}

TEST(Dataset, LoadsFashionMnistTestSplit) {
  const Dataset test = load_split(kFashion, Split::Test);
  EXPECT_EQ(test.images.sizes(), (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(test.labels.sizes(), (std::vector<int64_t>{10000}));
  EXPECT_EQ(test.labels.min().item<int64_t>(), 0);
  EXPECT_EQ(test.labels.max().item<int64_t>(), 9);
  EXPECT_EQ(count_classes(kFashion), 10);
}

TEST(Dataset, ClassFilterKeepsOnlySelectedClasses) {
  const std::vector<int64_t> keep = select_classes({}, parse_id_list("7,8,9", "--holdout"), 10);
  EXPECT_EQ(keep, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  const Dataset test = load_split(kFashion, Split::Test, keep);
  EXPECT_EQ(test.size(), 7000);  // Fashion-MNIST's test split has 1000 images per class
  EXPECT_LE(test.labels.max().item<int64_t>(), 6);
  const torch::Tensor mapped = remap_labels(torch::tensor({3, 8, 0}), {0, 3, 5});
  EXPECT_TRUE(torch::equal(mapped, torch::tensor({1, -1, 0})));
}

TEST(Dataset, MismatchedCountsAndBadClassListsAreErrors) {
  TempDir dir;
  write_raw(dir / "t10k-images-idx3-ubyte", idx_bytes(0x08, {5, 28, 28}, 5 * 28 * 28));
  write_raw(dir / "t10k-labels-idx1-ubyte", idx_bytes(0x08, {4}, 4));
  expect_error([&] { load_split(dir.path(), Split::Test); }, "has 5 images but");
  expect_error([&] { load_split(dir.path(), Split::Train); }, "train-images-idx3-ubyte");
  expect_error([] { parse_id_list("1,x", "--classes"); }, "--classes");
  expect_error([] { select_classes({12}, {}, 10); }, "class id 12");
}
