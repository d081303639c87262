// LFW pairs over an image folder: "name n" is DIR/name/name_NNNN.<any accepted extension>.
#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "eval/pair_files.h"
#include "pairs_text.h"
#include "test_util.h"

using namespace centerloss::eval;

namespace {

const std::vector<std::string> kFiles = {"D/Ann/Ann_0001.jpg", "D/Ann/Ann_0002.PNG", "D/Ann/Ann_0012.jpeg",
                                         "D/Bob/Bob_0001.bmp", "D/Bob/Bob_0002.png", "D/Bob/notes.jpg",
                                         "D/Cy/Cy_12345.jpg"};
const std::vector<int64_t> kLabels = {0, 0, 0, 1, 1, 1, 2};

}  // namespace

TEST(PairFiles, NamesAndNumbersResolveToFilesOfAnyExtension) {
  const PairList list = parse_pairs("2 1\nAnn 1 12\nAnn 2 Bob 1\nBob 1 2\nCy 12345 Ann 1\n");
  std::vector<std::tuple<int64_t, int64_t, bool, int>> found;
  for (const Pair& p : resolve_pairs_to_files(list, "D", kFiles, kLabels)) found.emplace_back(p.a, p.b, p.same, p.fold);
  // Cy 12345: five digits when n needs them
  const std::vector<std::tuple<int64_t, int64_t, bool, int>> expected = {
      {0, 2, true, 0}, {1, 3, false, 0}, {3, 4, true, 1}, {6, 0, false, 1}};
  EXPECT_EQ(found, expected);
}

TEST(PairFiles, MissingAmbiguousAndOneClassImpostorsAreErrorsNamingTheLine) {
  expect_error<std::runtime_error>(
      [] { resolve_pairs_to_files(parse_pairs("2 1\nAnn 1 3\nAnn 1 Bob 1\nBob 1 2\nCy 12345 Ann 1\n"), "D", kFiles, kLabels); },
      "pairs.txt:2: no image D/Ann/Ann_0003.* (.png, .jpg, .jpeg, .bmp) in the folder");
  std::vector<std::string> files = kFiles;
  files.push_back("D/Bob/Bob_0002.jpg");
  std::vector<int64_t> labels = kLabels;
  labels.push_back(1);
  expect_error<std::runtime_error>(
      [&] { resolve_pairs_to_files(parse_pairs("2 1\nAnn 1 2\nAnn 1 Bob 1\nBob 1 2\nCy 12345 Ann 1\n"), "D", files, labels); },
      "pairs.txt:4: D/Bob/Bob_0002 exists with two extensions");
  labels = kLabels;
  labels[3] = 0;  // Bob_0001 labelled as Ann's class
  expect_error<std::runtime_error>(
      [&] { resolve_pairs_to_files(parse_pairs("2 1\nAnn 1 2\nAnn 1 Bob 1\nBob 1 2\nCy 12345 Ann 1\n"), "D", kFiles, labels); },
      "pairs.txt:3: impostor pair 'Ann' / 'Bob' is one class");
}
