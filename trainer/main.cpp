// The `centerloss` command-line program: train / eval / embed / sweep (see docs/trainer.md).
#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <fmt/format.h>

#include <exception>

#include "cli/commands.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  CLI::App app{"centerloss: softmax + center loss training on IDX image data (Wen et al. 2016)"};
  app.require_subcommand(1);
  centerloss::trainer::add_train_command(app);
  centerloss::trainer::add_eval_command(app);
  centerloss::trainer::add_embed_command(app);
  centerloss::trainer::add_sweep_command(app);
  centerloss::trainer::add_openset_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const centerloss::trainer::TrainingStopped& e) {  // diverged (3) or a signal (128 + n)
    fmt::print(stderr, "error: {}\n", e.what());
    return e.exit_code;
  } catch (const c10::Error& e) {  // LibTorch's own: the message without its C++ backtrace
    fmt::print(stderr, "error: {}\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
