#include "train/run.h"

#include "util/fs.h"

namespace centerloss::trainer {

TrainState load_run(const std::string& run_dir) {
  const std::string path = path_join(run_dir, kCheckpointFile);
  TrainState state = make_state(read_checkpoint_config(path));
  load_checkpoint(path, state);
  state.model->eval();
  state.center_loss->eval();
  return state;
}

}  // namespace centerloss::trainer
