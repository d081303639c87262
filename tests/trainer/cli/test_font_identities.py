"""scripts/make_font_identities.py: fonts as identities. The same files for a seed (and any
--workers), no identity and no family group on both sides of the split, identity-disjoint LFW
folds over the held-out fonts, a subset of the training fonts with the same held-out side, fonts
without the alphabet's glyphs left out, a finished data set never overwritten. Real Debian fonts
(scripts/install_system_deps.sh installs them)."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from cli_runner import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "make_font_identities.py")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import make_font_identities as fonts  # noqa: E402

SMALL = ["--max-identities", "40", "--heldout", "12", "--per-class", "3", "--test-per-class", "1",
         "--heldout-per-class", "4", "--sets", "3", "--pairs-per-set", "20", "--size", "32x40"]
NOTO = "/usr/share/fonts/truetype/noto"


def generate(out, *args):
    return subprocess.run([sys.executable, SCRIPT, str(out), *SMALL, *args], capture_output=True,
                          text=True, timeout=600)


def tree_hash(folder):
    """{relative path: sha256} of every file under folder."""
    hashes = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                hashes[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return hashes


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("fonts") / "data"
    result = generate(out, "--seed", "7")
    assert result.returncode == 0, result.stderr
    return out


def test_same_seed_same_files_any_workers_other_seed_other_files(data, tmp_path):
    assert generate(tmp_path / "again", "--seed", "7", "--workers", "2").returncode == 0
    first, again = tree_hash(data), tree_hash(tmp_path / "again")
    assert len(first) == 40 * 4 + 2  # 3 + 1 or 4 images per identity, pairs.txt, fonts.json
    assert first == again
    assert generate(tmp_path / "other", "--seed", "8").returncode == 0
    other = tree_hash(tmp_path / "other")
    assert other["pairs.txt"] != first["pairs.txt"]
    common = set(first) & set(other) - {"fonts.json", "pairs.txt"}
    assert common and all(first[k] != other[k] for k in common)  # every image drawn anew


def test_split_keeps_identities_and_families_on_one_side(data):
    manifest = json.loads((data / "fonts.json").read_text())
    train = set(os.listdir(data / "train"))
    heldout = set(os.listdir(data / "heldout"))
    assert set(os.listdir(data / "test")) == train
    assert not train & heldout and len(train) + len(heldout) == 40
    assert 12 <= len(heldout) < 40
    side = {i["name"]: i["side"] for i in manifest["identities"]}
    assert {n for n, s in side.items() if s == "train"} == train
    assert {n for n, s in side.items() if s == "heldout"} == heldout
    groups = {s: {i["group"] for i in manifest["identities"] if i["side"] == s} for s in ("train", "heldout")}
    assert not groups["train"] & groups["heldout"]
    files = {i["file"] for i in manifest["identities"]}
    assert len(files) == 40  # one font file per identity
    for name in train:
        assert sorted(os.listdir(data / "train" / name)) == [f"{name}_{n:04d}.jpg" for n in (1, 2, 3)]
        assert os.listdir(data / "test" / name) == [f"{name}_0004.jpg"]
    for name in heldout:
        assert len(os.listdir(data / "heldout" / name)) == 4


def test_pairs_are_lfw_folds_of_their_own_identities(data):
    lines = (data / "pairs.txt").read_text().splitlines()
    assert lines[0] == "3\t20"
    heldout = set(os.listdir(data / "heldout"))
    body = [line.split("\t") for line in lines[1:]]
    assert len(body) == 3 * 40
    fold_names = []
    for k in range(3):
        fold = body[40 * k:40 * (k + 1)]
        genuine, impostor = fold[:20], fold[20:]
        assert all(len(p) == 3 and p[1] != p[2] for p in genuine)
        assert all(len(p) == 4 and p[0] != p[2] for p in impostor)
        assert len({tuple(p) for p in fold}) == 40  # no pair twice
        names = {p[0] for p in genuine} | {p[0] for p in impostor} | {p[2] for p in impostor}
        assert names <= heldout
        assert all(1 <= int(n) <= 4 for p in genuine for n in p[1:])
        fold_names.append(names)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not fold_names[a] & fold_names[b]


def test_train_identities_keeps_a_spread_subset_and_the_same_heldout_side(data, tmp_path):
    # identities_experiment.py's D = 2 data set: fewer training fonts, more images each, the
    # very same held-out images and pairs as the full data set of the same seed.
    out = tmp_path / "subset"
    result = generate(out, "--seed", "7", "--train-identities", "5", "--per-class", "6")
    assert result.returncode == 0, result.stderr
    training = sorted(os.listdir(data / "train"))
    spread = [training[k * len(training) // 5] for k in range(5)]
    assert sorted(os.listdir(out / "train")) == spread == sorted(os.listdir(out / "test"))
    full, subset = tree_hash(data), tree_hash(out)
    for name in spread:
        assert len(os.listdir(out / "train" / name)) == 6
        # each identity's own random stream: its first images are the full data set's
        first = [os.path.join("train", name, f"{name}_{n:04d}.jpg") for n in (1, 2, 3)]
        assert [subset[f] for f in first] == [full[f] for f in first]
    heldout = {k for k in full if k.startswith("heldout" + os.sep) or k == "pairs.txt"}
    assert heldout and {k: subset.get(k) for k in heldout} == {k: full[k] for k in heldout}
    sides = {i["name"]: i["side"] for i in json.loads((out / "fonts.json").read_text())["identities"]}
    assert sorted(n for n, s in sides.items() if s == "train") == spread
    assert generate(tmp_path / "bad", "--train-identities", "-1").returncode == 2


def test_pairs_are_as_many_as_the_data_allows(tmp_path):
    # 12 held-out identities in 3 folds of 4, 2 images each: 4 genuine pairs per fold at most.
    out = tmp_path / "few"
    result = generate(out, "--heldout-per-class", "2", "--pairs-per-set", "300")
    assert result.returncode == 0, result.stderr
    header = (out / "pairs.txt").read_text().splitlines()[0]
    sets, per_set = map(int, header.split())
    assert sets == 3 and 1 <= per_set < 300
    held = len(os.listdir(out / "heldout"))
    assert per_set == held // 3  # the smallest fold's identities x 1 genuine pair each


def test_fonts_without_the_alphabet_are_skipped():
    from PIL import ImageFont
    latin = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 32)
    assert fonts.missing_characters(latin, fonts.ALPHABET) == ""
    arabic = ImageFont.truetype(os.path.join(NOTO, "NotoSansArabic-Regular.ttf"), 32)
    assert fonts.missing_characters(arabic, "Ab3") == "Ab"  # it has digits, not Latin letters
    identities, skipped = fonts.survey_fonts([NOTO], fonts.ALPHABET)
    names = {i["name"] for i in identities}
    assert "Noto_Sans_Regular" in names and not any("Arabic" in n for n in names)
    reasons = {os.path.basename(s["file"]): s["reason"] for s in skipped}
    assert reasons["NotoSansArabic-Regular.ttf"].startswith("no glyph for")


def test_one_font_in_several_formats_redraws_and_symbol_fonts_are_one_or_no_identity():
    identities, skipped = fonts.survey_fonts(["/usr/share/fonts"], fonts.ALPHABET)
    assert len(identities) >= 300
    names = [i["name"] for i in identities]
    assert len(names) == len(set(names))
    assert sum(n.startswith("Nimbus_Roman_") for n in names) == 4  # .otf, .t1, .pfb: once each
    assert not any(n.startswith(("TeX_Gyre_Termes", "FreeSerif")) for n in names)  # Times redraws
    # Dingbats and Greek at Latin code points: not the .notdef box, still no letters.
    assert not any(n.startswith(("D050000L", "Standard_Symbols")) for n in names)


def test_a_finished_data_set_is_never_overwritten(data):
    before = tree_hash(data)
    result = generate(data)
    assert result.returncode != 0 and "exists" in result.stderr
    assert tree_hash(data) == before
