"""openset_experiment.py --also-similarity: every finished run, also one finished before the
option was given, is scored a second way once (RUN/openset_S.json, table_openset_S.md); a
scoring already written is kept; --overwrite removes the second table with the rest."""
import json
import os
import subprocess
import sys

from cli_runner import CLI, ROOT, require_cli

require_cli()

SCRIPT = os.path.join(ROOT, "scripts", "experiments", "openset_experiment.py")


def experiment(out, *extra):
    # --similarity cosine in --openset-args: the second scoring must replace it (CLI11 refuses
    # an option given twice).
    cmd = [sys.executable, SCRIPT, "--cli", CLI, "--out", out, "--dims", "2", "--lambdas", "0",
           "--seeds", "1", "--epochs", "1", "--train-limit", "300",
           "--train-args", "--test-limit 100 --batch-size 30",
           "--openset-args", "--folds 2 --pairs-per-fold 20 --similarity cosine", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_a_second_scoring_of_finished_runs_is_written_once(tmp_path):
    out = str(tmp_path / "experiment")
    run = os.path.join(out, "D2_lambda0_seed1")
    experiment(out)
    assert not os.path.exists(os.path.join(run, "openset_euclidean.json"))
    first = open(os.path.join(run, "openset.json")).read()

    experiment(out, "--resume", "--also-similarity", "euclidean")
    with open(os.path.join(run, "openset_euclidean.json")) as f:
        scored = json.load(f)
    assert scored["open_set"]["similarity"] == "euclidean"
    assert json.loads(first)["open_set"]["similarity"] == "cosine"
    assert open(os.path.join(run, "openset.json")).read() == first  # not trained or scored again
    assert "euclidean similarity" in open(os.path.join(out, "table_openset_euclidean.md")).read()

    # A scoring already there is kept, not computed again.
    scored["kept"] = True
    with open(os.path.join(run, "openset_euclidean.json"), "w") as f:
        json.dump(scored, f)
    experiment(out, "--resume", "--also-similarity", "euclidean")
    with open(os.path.join(run, "openset_euclidean.json")) as f:
        assert json.load(f).get("kept") is True

    experiment(out, "--overwrite")
    assert not os.path.exists(os.path.join(out, "table_openset_euclidean.md"))
    assert not os.path.exists(os.path.join(run, "openset_euclidean.json"))
