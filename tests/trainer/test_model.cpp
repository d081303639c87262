// Output shapes of the two networks.
#include <torch/torch.h>

#include "data/dataset.h"
#include "model/net.h"
#include "train/config.h"
#include "test_util.h"

using namespace centerloss::trainer;

namespace {

int64_t parameter_count(FeatureNet& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST(Model, OutputShapesForEachArchAndFeatureDim) {
  for (Arch arch : {Arch::LeNetsPP, Arch::Small}) {
    for (int64_t d : {2, 64}) {
      NetConfig config;
      config.arch = arch;
      config.feature_dim = d;
      config.num_classes = 7;
      FeatureNet net(config);
      const NetOutput out = net->forward(torch::randn({3, 1, 28, 28}));
      EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 7})) << arch_name(arch);
      EXPECT_EQ(out.features.sizes(), (std::vector<int64_t>{3, d})) << arch_name(arch);
      EXPECT_EQ(out.features.dtype(), torch::kFloat);
    }
  }
}

TEST(Model, LeNetsPPHasThePapersLayers) {
  NetConfig config;  // lenets++, D = 2, K = 10
  FeatureNet net(config);
  // six 5x5 convolutions 1-32-32-64-64-128-128, three pools: 28 -> 3, 128*3*3 -> 2 -> 10
  const int64_t convs = (1 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128) * 25 +
                        (32 + 32 + 64 + 64 + 128 + 128);
  const int64_t prelus = 32 + 32 + 64 + 64 + 128 + 128 + 2;
  const int64_t fcs = (128 * 9 * 2 + 2) + (2 * 10 + 10);
  EXPECT_EQ(parameter_count(net), convs + prelus + fcs);
  NetConfig small = config;
  small.arch = Arch::Small;
  FeatureNet small_net(small);
  EXPECT_LT(parameter_count(small_net) * 5, parameter_count(net));
}

TEST(Model, BadArchNameIsAnError) {
  expect_error([] { parse_arch("resnet"); }, "--arch");
}

TEST(EnumNames, EveryNameParsesBackToItsValue) {
  for (const auto& e : kArchNames) EXPECT_EQ(arch_name(parse_arch(e.name)), arch_name(e.value));
  for (const auto& e : kReductionNames) EXPECT_EQ(parse_reduction(reduction_name(e.value)), e.value);
  for (const auto& e : kUpdateNames) EXPECT_EQ(parse_update(update_name(e.value)), e.value);
  for (const auto& e : kInitNames) EXPECT_EQ(parse_init(init_name(e.value)), e.value);
  for (const auto& e : kSplitNames) EXPECT_EQ(parse_split(e.name), e.value);
  EXPECT_EQ(arch_name(Arch::LeNetsPP), "lenets++");  // the first name is the one written out
  EXPECT_EQ(parse_arch("lenetspp"), Arch::LeNetsPP);
  expect_error<std::invalid_argument>([] { parse_init("ones"); },
                                      "--init: expected one of zeros, normal, xavier, first_sight, got 'ones'");
  expect_error<std::invalid_argument>([] { parse_split("dev"); }, "--split");
}
