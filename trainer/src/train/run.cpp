#include "train/run.h"

#include "util/fs.h"

namespace centerloss::trainer {

TrainState load_run(const std::string& run_dir) {
  CheckpointFile checkpoint(path_join(run_dir, kCheckpointFile));
  TrainState state = make_state(checkpoint.config());
  checkpoint.restore(state);
  state.model->eval();
  state.center_loss->eval();
  return state;
}

}  // namespace centerloss::trainer
