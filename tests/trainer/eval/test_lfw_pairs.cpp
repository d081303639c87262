// The LFW pairs.txt reader (well-formed and malformed files) and the mapping onto a data set.
#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>

#include "eval/lfw_pairs.h"
#include "pairs_text.h"
#include "test_util.h"

using namespace centerloss::eval;

namespace {

PairList parse(const std::string& text) { return parse_pairs(text, "test.txt"); }

// Expects a parse error whose message mentions `where` (e.g. "test.txt:3:").
void expect_parse_error(const std::string& text, const std::string& where) {
  SCOPED_TRACE(text);
  expect_error<std::runtime_error>([&] { parse(text); }, where);
}

const char* kTwoSets =
    "2\t2\r\n"
    "Abel_Pacheco\t1\t4\r\n"
    "Akhmed_Zakayev 1 3\n"
    "Abdel_Madi_Shabneh\t1\tDean_Barker\t1\n"
    "Abdel_Madi_Shabneh 1 Giancarlo_Fisichella 1\n"
    "\n"
    "Bob 2 3\n"
    "Carl 1 2\n"
    "Bob 1 Carl 2\n"
    "Carl 3 Bob 1\n"
    "\n";

}  // namespace

TEST(LfwPairs, ReadsTheLfwLayout) {
  const auto list = parse(kTwoSets);
  EXPECT_EQ(list.sets, 2);
  EXPECT_EQ(list.pairs_per_set, 2);
  ASSERT_EQ(list.entries.size(), 8u);
  const auto& g = list.entries[0];
  EXPECT_TRUE(g.same);
  EXPECT_EQ(g.name_a, "Abel_Pacheco");
  EXPECT_EQ(g.name_b, "Abel_Pacheco");
  EXPECT_EQ(g.image_a, 1);
  EXPECT_EQ(g.image_b, 4);
  EXPECT_EQ(g.fold, 0);
  const auto& i = list.entries[3];
  EXPECT_FALSE(i.same);
  EXPECT_EQ(i.name_b, "Giancarlo_Fisichella");
  EXPECT_EQ(list.entries[4].fold, 1);
  EXPECT_EQ(list.entries[4].line, 7);  // blank line 6 skipped but counted
}

TEST(LfwPairs, SingleNumberHeaderIsOneSet) {
  const auto list = parse("1\nA 1 2\nA 1 B 1\n");
  EXPECT_EQ(list.sets, 1);
  EXPECT_EQ(list.entries.size(), 2u);
}

TEST(LfwPairs, MalformedLinesNameTheLine) {
  expect_parse_error("", "test.txt:1:");
  expect_parse_error("2 2 2\n", "test.txt:1:");
  expect_parse_error("x 2\n", "test.txt:1:");
  expect_parse_error("1 1\nA 1\nA 1 B 1\n", "test.txt:2:");      // genuine with 2 fields
  expect_parse_error("1 1\nA 1 B 2\nA 1 B 1\n", "test.txt:2:");  // impostor in genuine block
  expect_parse_error("1 1\nA 1 2\nA 1 2\n", "test.txt:3:");      // genuine in impostor block
  expect_parse_error("1 1\nA 0 2\nA 1 B 1\n", "test.txt:2:");    // image numbers start at 1
  expect_parse_error("1 1\nA 1 2x\nA 1 B 1\n", "test.txt:2:");   // not an integer
  expect_parse_error("1 1\nA -1 2\nA 1 B 1\n", "test.txt:2:");
  expect_parse_error("1 2\nA 1 2\nA 1 3\nA 1 B 1\n", "test.txt:5:");  // truncated
  expect_parse_error("1 1\nA 1 2\nA 1 B 1\nC 1 2\n", "test.txt:4:");  // extra line
}

TEST(LfwPairs, ResolvesClassNumbersAndImageNumbers) {
  // Class 0 at rows 0, 2, 4; class 1 at rows 1, 3.
  const std::vector<int64_t> labels = {0, 1, 0, 1, 0};
  const auto pairs = resolve_pairs(parse("1 1\n0 1 3\n0 2 1 2\n"), labels);
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].a, 0);
  EXPECT_EQ(pairs[0].b, 4);
  EXPECT_TRUE(pairs[0].same);
  EXPECT_EQ(pairs[1].a, 2);
  EXPECT_EQ(pairs[1].b, 3);
  EXPECT_FALSE(pairs[1].same);
}

TEST(LfwPairs, ResolvesClassNames) {
  const std::vector<int64_t> labels = {0, 1, 0, 1, 0};
  const auto pairs =
      resolve_pairs(parse("1 1\nShirt 2 3\nBag 1 Shirt 1\n"), labels, {"Shirt", "Bag"});
  EXPECT_EQ(pairs[0].a, 2);
  EXPECT_EQ(pairs[0].b, 4);
  EXPECT_EQ(pairs[1].a, 1);
  EXPECT_EQ(pairs[1].b, 0);
}

TEST(LfwPairs, ResolveErrorsNameTheLine) {
  const std::vector<int64_t> labels = {0, 1, 0, 1, 0};
  EXPECT_THROW(resolve_pairs(parse("1 1\n0 1 4\n0 1 1 1\n"), labels), std::runtime_error);
  EXPECT_THROW(resolve_pairs(parse("1 1\nShirt 1 2\n0 1 1 1\n"), labels), std::runtime_error);
  EXPECT_THROW(resolve_pairs(parse("1 1\nHat 1 2\nShirt 1 Bag 1\n"), labels, {"Shirt", "Bag"}),
               std::runtime_error);
  expect_error<std::runtime_error>(  // impostor within one class
      [&] { resolve_pairs(parse("1 1\n0 1 2\n0 1 0 2\n"), labels); }, "test.txt:3:");
}
