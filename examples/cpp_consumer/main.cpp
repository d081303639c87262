// Trains 2-D features of 3 classes with center loss alone for a few steps and prints how the
// loss and the centers move: a smoke check of an installed centerloss, not a benchmark.
// Exit status 0 only if the loss fell and the module's centers moved toward the class means.
#include <centerloss/center_loss.h>
#include <torch/torch.h>

#include <cstdio>

int main() {
  torch::manual_seed(0);
  const int64_t num_classes = 3, feature_dim = 2, batch = 96;
  centerloss::CenterLoss center_loss(
      centerloss::CenterLossOptions(num_classes, feature_dim).alpha(0.5));

  // Features are a trainable table (one row per sample) so the loss can pull them in.
  auto labels = torch::arange(batch) % num_classes;
  auto features = (torch::randn({batch, feature_dim}) + 3.0 * labels.unsqueeze(1).to(torch::kFloat))
                      .requires_grad_(true);
  torch::optim::SGD optimizer({features}, torch::optim::SGDOptions(0.5));

  double first = 0.0, last = 0.0;
  for (int step = 0; step < 20; ++step) {
    optimizer.zero_grad();
    auto loss = center_loss->forward(features, labels);  // moves the centers (training mode)
    loss.backward();
    optimizer.step();
    last = loss.item<double>();
    if (step == 0) first = last;
  }
  // The centers should now sit near the class means of the features.
  auto means = torch::zeros({num_classes, feature_dim});
  means.index_add_(0, labels, features.detach());
  means /= batch / num_classes;
  const double gap = (center_loss->centers() - means).abs().max().item<double>();

  std::printf("centerloss consumer: loss %.4f -> %.4f, max |center - class mean| = %.4f, "
              "CUDA kernels: %s\n",
              first, last, gap, centerloss::has_cuda_kernels() ? "yes" : "no");
  return (last < first && gap < 0.5) ? 0 : 1;
}
