"""Keras checks for ONE backend, run by test_keras.py as a script with KERAS_BACKEND set:

    KERAS_BACKEND=jax python tests/python/keras_worker.py results.json

Keras fixes its backend when it is first imported, so every backend needs its own process. This
file runs every check and writes {"backend", "checks": {name: "ok" or the traceback}, "parity":
{name: nested lists}}; test_keras.py turns each entry into a pytest test. Nothing here is
collected by pytest itself (no test_ functions, keras is imported only in main()).
"""
from __future__ import annotations

import json
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

K, D, N = 5, 3, 12
RTOL, ATOL = 1e-5, 1e-6


# ---- hand-computed references (plain numpy loops, float64) ----
def reference_step(centers, x, y, alpha, rule):
    out = np.array(centers, dtype=np.float64)
    for j in range(out.shape[0]):
        rows = x[y == j].astype(np.float64)
        if len(rows):
            denominator = len(rows) + 1 if rule == "paper" else len(rows)
            out[j] = centers[j] - alpha * np.sum(centers[j] - rows, axis=0) / denominator
    return out


def reference_loss(centers, x, y, margin=0.0, reduction="mean"):
    distance = np.sqrt(np.sum((x.astype(np.float64) - centers[y]) ** 2, axis=1))
    per_sample = 0.5 * np.maximum(distance - margin, 0.0) ** 2
    return {"none": per_sample, "mean": per_sample.mean(), "sum": per_sample.sum()}[reduction]


def batch(seed, n=N):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D)).astype("float32")
    # Class 0 repeated, class K - 1 absent from the batch.
    y = np.concatenate([[0, 0, 0], rng.integers(0, K - 1, size=n - 3)]).astype("int32")
    c = rng.normal(size=(K, D)).astype("float32")
    return x, y, c


def close(actual, expected, what, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=rtol, atol=atol, err_msg=what)


# ---- the checks (keras and the layer are imported in main, after KERAS_BACKEND is set) ----
def numpy_of(keras, value):
    return np.array(keras.ops.convert_to_numpy(value))


def fresh_layer(keras, CenterLoss, centers, **options):
    layer = CenterLoss(centers.shape[0], **options)
    layer.build([(None, centers.shape[1]), (None,)])
    layer.centers.assign(centers)
    return layer


def check_training_call_moves_centers(keras, CenterLoss):
    for rule in ("paper", "mean"):
        for label_shape in ((N,), (N, 1)):
            x, y, c = batch(1)
            layer = fresh_layer(keras, CenterLoss, c, alpha=0.6, weight=0.3, update=rule)
            out = layer([x, y.reshape(label_shape)], training=True)
            close(numpy_of(keras, out), x, "features come back unchanged", 0, 0)
            moved = numpy_of(keras, layer.centers)
            close(moved, reference_step(c, x, y, 0.6, rule), f"{rule} step, labels {label_shape}")
            assert np.array_equal(moved[K - 1], c[K - 1]), "a class absent from the batch moved"
            assert len(layer.losses) == 1, layer.losses
            close(numpy_of(keras, layer.losses[0]), 0.3 * reference_loss(c, x, y), "0.3 * loss")
            assert int(numpy_of(keras, layer.skipped_updates)) == 0


def check_loss_options(keras, CenterLoss):
    x, y, c = batch(2)
    for reduction in ("mean", "sum"):
        for margin in (0.0, 0.8):
            layer = fresh_layer(keras, CenterLoss, c, reduction=reduction, margin=margin)
            layer([x, y], training=False)
            expected = reference_loss(c, x, y, margin, reduction)
            close(numpy_of(keras, layer.losses[0]), expected, f"{reduction}, margin {margin}")


def small_model(keras, CenterLoss, lr=0.0, jit_compile="auto", **options):
    features_in = keras.Input((D,))
    labels_in = keras.Input((), dtype="int32")
    features = keras.layers.Dense(D, name="features")(features_in)
    out = CenterLoss(K, name="center_loss", **options)([features, labels_in])
    probs = keras.layers.Dense(K, activation="softmax")(out)
    model = keras.Model([features_in, labels_in], probs)
    model.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy",
                  jit_compile=jit_compile)
    return model, keras.Model(features_in, features)


def check_fit_moves_centers_per_spec(keras, CenterLoss):
    x, y, c = batch(3)
    model, feature_model = small_model(keras, CenterLoss, weight=0.5)  # lr 0: features fixed
    layer = model.get_layer("center_loss")
    layer.centers.assign(c)
    f = feature_model.predict(x, verbose=0)
    expected = np.array(c, dtype=np.float64)
    for _ in range(3):
        expected = reference_step(expected, f, y, 0.5, "paper")
    model.fit([x, y], y, batch_size=N, epochs=3, shuffle=False, verbose=0)
    close(numpy_of(keras, layer.centers), expected, "centers after 3 fit steps", 1e-5, 1e-5)


def check_eval_and_predict_do_not_move(keras, CenterLoss):
    x, y, c = batch(4)
    model, feature_model = small_model(keras, CenterLoss, weight=0.5)
    layer = model.get_layer("center_loss")
    layer.centers.assign(c)
    result = model.evaluate([x, y], y, batch_size=N, verbose=0, return_dict=True)
    probs = model.predict([x, y], batch_size=N, verbose=0)
    layer([feature_model.predict(x, verbose=0), y])  # training defaults to False
    assert np.array_equal(numpy_of(keras, layer.centers), c), "evaluate/predict moved centers"
    # evaluate's loss is crossentropy + 0.5 * center loss: the layer's add_loss reached the model.
    f = feature_model.predict(x, verbose=0)
    crossentropy = -np.mean(np.log(probs[np.arange(N), y]))
    close(result["loss"], crossentropy + 0.5 * reference_loss(c, f, y), "evaluate loss", 1e-4, 1e-5)


def check_gradient_rule(keras, CenterLoss):
    x, y, c = batch(5)
    lr, weight = 0.1, 0.7
    model, feature_model = small_model(keras, CenterLoss, lr=lr, weight=weight, update="gradient")
    layer = model.get_layer("center_loss")
    assert any(v is layer.centers for v in model.trainable_weights), "centers not trainable"
    layer.centers.assign(c)
    f = feature_model.predict(x, verbose=0).astype(np.float64)
    grad = np.zeros((K, D))
    np.add.at(grad, y, -(f - c[y]) / N)  # dL/dc_j = -s * sum_{y_i=j} (x_i - c_j), s = 1/N
    model.fit([x, y], y, batch_size=N, epochs=1, shuffle=False, verbose=0)
    close(numpy_of(keras, layer.centers), c - lr * weight * grad, "SGD step on centers", 1e-5, 1e-6)


def check_gradient_rule_keeps_centers_finite(keras, CenterLoss):
    """update="gradient": a NaN batch must give the centers a zero gradient, not NaN."""
    x, y, c = batch(9)
    x[2, 1] = np.nan
    model, _ = small_model(keras, CenterLoss, lr=0.1, weight=0.7, update="gradient")
    layer = model.get_layer("center_loss")
    layer.centers.assign(c)
    model.fit([x, y], y, batch_size=N, epochs=1, shuffle=False, verbose=0)
    assert np.array_equal(numpy_of(keras, layer.centers), c), "a NaN batch moved the centers"


def check_nan_batch_skips_update(keras, CenterLoss):
    x, y, c = batch(6)
    x[4, 1] = np.nan
    layer = fresh_layer(keras, CenterLoss, c)
    layer([x, y], training=True)
    assert np.array_equal(numpy_of(keras, layer.centers), c), "a NaN batch moved the centers"
    assert int(numpy_of(keras, layer.skipped_updates)) == 1
    assert not np.isfinite(numpy_of(keras, layer.losses[0])), "the loss should show the NaN"
    x[4, 1] = np.inf
    layer([x, y], training=True)
    assert int(numpy_of(keras, layer.skipped_updates)) == 2
    x[4, 1] = np.nan  # with a margin too: max(d - margin, 0) must not turn the NaN into 0
    margin_layer = fresh_layer(keras, CenterLoss, c, margin=0.5)
    margin_layer([x, y], training=True)
    assert not np.isfinite(numpy_of(keras, margin_layer.losses[0])), "margin hid the NaN"
    assert int(numpy_of(keras, margin_layer.skipped_updates)) == 1


# (policy, the features' dtype, its unit roundoff u)
MIXED_POLICIES = (("mixed_float16", "float16", 2.0**-11), ("mixed_bfloat16", "bfloat16", 2.0**-8))


def as_seen(keras, x, dtype):
    """x rounded to dtype and back to float32: the features a mixed-precision layer sees."""
    return numpy_of(keras, keras.ops.cast(keras.ops.cast(x, dtype), "float32"))


def mixed_step_tolerance(x, alpha, u):
    """The step moves c_j by alpha/(1 + n_j) * sum (x_i - c_j): rounding each x_i to a relative
    error u moves it by at most alpha * u * max|x| (plus float32 rounding)."""
    return alpha * u * float(np.max(np.abs(x))) + 1e-6


def check_mixed_precision(keras, CenterLoss):
    """Under mixed_float16 and mixed_bfloat16 the features arrive in 16 bits; the centers stay
    float32; the step is the exact step of the features the layer saw (rtol 1e-5), and within
    alpha * u * max|x| of the step of the float32 features (mixed_step_tolerance)."""
    x, y, c = batch(11)
    for policy, dtype, u in MIXED_POLICIES:
        layer = CenterLoss(K, dtype=policy)
        layer.build([(None, D), (None,)])
        layer.centers.assign(c)
        out = layer([x, y], training=True)
        assert keras.backend.standardize_dtype(out.dtype) == dtype, (policy, out.dtype)
        assert keras.backend.standardize_dtype(layer.centers.dtype) == "float32", policy
        seen = as_seen(keras, x, dtype)
        moved = numpy_of(keras, layer.centers)
        close(moved, reference_step(c, seen, y, 0.5, "paper"), f"{policy} step", 1e-5, 1e-5)
        close(numpy_of(keras, layer.losses[0]), reference_loss(c, seen, y), f"{policy} loss",
              1e-5, 1e-5)
        error = np.max(np.abs(moved - reference_step(c, x, y, 0.5, "paper")))
        assert 0 < error <= mixed_step_tolerance(x, 0.5, u), (policy, error)


def check_mixed_precision_fit(keras, CenterLoss):
    """model.fit under a global mixed policy: the centers stay a float32 weight and move by the
    step of the 16-bit features the model computed, within the stated tolerance of the step of
    the same model's float32 features."""
    x, y, c = batch(13)
    for policy, dtype, u in MIXED_POLICIES:
        keras.config.set_dtype_policy(policy)
        try:
            model, feature_model = small_model(keras, CenterLoss, weight=0.5)  # lr 0
        finally:
            keras.config.set_dtype_policy("float32")
        layer = model.get_layer("center_loss")
        layer.centers.assign(c)
        f16 = feature_model.predict(x, verbose=0)
        assert keras.backend.standardize_dtype(f16.dtype) == dtype, (policy, f16.dtype)
        f16 = f16.astype("float32")
        f32 = numpy_of(keras, keras.ops.matmul(x, model.get_layer("features").kernel)
                       + model.get_layer("features").bias)
        model.fit([x, y], y, batch_size=N, epochs=1, shuffle=False, verbose=0)
        assert keras.backend.standardize_dtype(layer.centers.dtype) == "float32", policy
        assert int(numpy_of(keras, layer.skipped_updates)) == 0, policy
        moved = numpy_of(keras, layer.centers)
        close(moved, reference_step(c, f16, y, 0.5, "paper"), f"{policy} fit step", 1e-5, 1e-5)
        error = np.max(np.abs(moved - reference_step(c, f32, y, 0.5, "paper")))
        # The Dense layer's own 16-bit rounding adds to the features' rounding: 2 u.
        assert error <= mixed_step_tolerance(f32, 0.5, 2 * u), (policy, error)


def check_first_sight_init(keras, CenterLoss):
    x, y, _ = batch(7)
    layer = CenterLoss(K, init="first_sight")
    layer([x, y], training=True)
    seen = numpy_of(keras, layer.seen)
    assert seen.tolist() == [bool(np.any(y == j)) for j in range(K)], seen
    means = np.stack([x[y == j].mean(0) if seen[j] else np.zeros(D) for j in range(K)])
    close(numpy_of(keras, layer.centers), means, "centers = first batch means")


def check_save_load_round_trip(keras, CenterLoss):
    x, y, c = batch(8)
    options = dict(alpha=0.3, weight=0.25, reduction="sum", update="mean", margin=0.1,
                   init="normal", init_std=0.5)
    model, _ = small_model(keras, CenterLoss, lr=0.05, **options)
    layer = model.get_layer("center_loss")
    model.fit([x, y], y, batch_size=4, epochs=2, verbose=0)
    x_nan = x.copy()
    x_nan[0, 0] = np.nan
    layer([x_nan, y], training=True)  # skipped_updates = 1, saved too
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        again = loaded.get_layer("center_loss")
        assert type(again) is CenterLoss
        config = again.get_config()
        assert {k: config[k] for k in options} == options, config
        assert config["num_classes"] == K
        assert np.array_equal(numpy_of(keras, again.centers), numpy_of(keras, layer.centers))
        assert int(numpy_of(keras, again.skipped_updates)) == 1
        close(loaded.predict([x, y], verbose=0), model.predict([x, y], verbose=0), "predict")
        # Weights of another shape do not load silently.
        wrong = CenterLoss(K + 1, name="center_loss")
        wrong.build([(None, D), (None,)])
        try:
            wrong.set_weights(layer.get_weights())
        except ValueError as err:
            assert f"({K + 1}, {D})" in str(err) and f"({K}, {D})" in str(err), str(err)
        else:
            raise AssertionError("weights of shape (K, D) loaded into a (K + 1, D) layer")


def expect_error(fn, kind, pattern):
    try:
        fn()
    except kind as err:
        if not re.search(pattern, str(err)):
            raise AssertionError(f"message {str(err)[:400]!r} does not match {pattern!r}")
        return
    raise AssertionError(f"no error raised (expected {pattern!r})")


def check_bad_labels_raise(keras, CenterLoss):
    x, y, c = batch(9)
    layer = fresh_layer(keras, CenterLoss, c)
    bad = y.copy()
    bad[2] = 7
    # (tensorflow's Assert prints its data in brackets: "found label] [7] [at position] [2")
    out_of_range = (
        r"labels must be in \[0, K\) with K = 5; found label\]? \[?7\]? \[?at position\]? \[?2"
    )
    # Label values: the C++ op checks them on the torch backend (RuntimeError, like every
    # centerloss op), the layer's own run-time assertion on jax and tensorflow (ValueError).
    range_error = RuntimeError if keras.backend.backend() == "torch" else ValueError
    expect_error(lambda: layer([x, bad], training=True), range_error, out_of_range)
    bad[2] = -1
    expect_error(lambda: layer([x, bad], training=True), range_error, r"found label\]? \[?-1")
    expect_error(lambda: layer([x, y.astype("float32")], training=True), TypeError,
                 "labels must have an integer dtype")
    expect_error(lambda: layer([x, np.eye(K, dtype="int32")[y]], training=True), ValueError,
                 r"labels must be integer class ids of shape \[N\] or \[N, 1\]")
    expect_error(lambda: layer([x, y[:-1]], training=True), ValueError, "rows but labels has")
    expect_error(lambda: layer([x[:, :2], y], training=True), ValueError,
                 r"features has D = 2 but the centers have D = 3")
    expect_error(lambda: layer(x, training=True), ValueError, r"\[features, labels\]")
    expect_error(lambda: CenterLoss(K, alpha=1.5), ValueError, r"alpha must be in \(0, 1\]")
    expect_error(lambda: CenterLoss(K, reduction="none"), ValueError, "add_loss needs a scalar")
    assert np.array_equal(numpy_of(keras, layer.centers), c), "a failed call moved the centers"
    # Inside model.fit (jitted on jax, a tf.function on tensorflow): still raises, nothing moves.
    model, _ = small_model(keras, CenterLoss, weight=0.5)
    centers_before = numpy_of(keras, model.get_layer("center_loss").centers)
    bad[2] = 7
    fit = lambda: model.fit([x, bad], y, batch_size=N, shuffle=False, verbose=0)  # noqa: E731
    expect_error(fit, Exception, out_of_range)  # inside fit a backend may wrap the error type
    if keras.backend.backend() != "jax":
        # (Keras's JAX trainer detaches the variables during fit and puts them back only when
        # fit returns, so there is nothing to read after a failed fit; a JAX step is a pure
        # function whose new state is never returned when it raises.)
        after = numpy_of(keras, model.get_layer("center_loss").centers)
        assert np.array_equal(after, centers_before), "a failed fit step moved the centers"
        # A NaN feature and a bad label: the step fails on the label, and the skip counter
        # (state too) must not count it (tensorflow ran its update beside the failed check).
        nan_x = x.copy()
        nan_x[0, 0] = np.nan
        fit = lambda: model.fit([nan_x, bad], y, batch_size=N, shuffle=False, verbose=0)  # noqa: E731
        expect_error(fit, Exception, out_of_range)
        skipped = int(numpy_of(keras, model.get_layer("center_loss").skipped_updates))
        assert skipped == 0, f"a failed fit step counted a skipped update ({skipped})"


def check_bad_labels_under_xla_change_nothing(keras, CenterLoss):
    """model.fit with jit_compile=True (Keras's default for tensorflow on a GPU). jax raises as
    without XLA; tensorflow's XLA drops assertions, so there a bad label cannot raise: the
    step must then be skipped (counted), the loss NaN, and the centers untouched."""
    if keras.backend.backend() == "torch":
        return  # no XLA; the C++ op raises (check_bad_labels_raise)
    x, y, c = batch(11)
    model, _ = small_model(keras, CenterLoss, jit_compile=True, weight=0.5)
    layer = model.get_layer("center_loss")
    layer.centers.assign(c)
    bad = y.copy()
    bad[4] = 7
    try:
        history = model.fit([x, bad], y, batch_size=N, shuffle=False, verbose=0)
    except Exception as err:  # jax: the host callback's error
        assert keras.backend.backend() == "jax", f"tensorflow raised under XLA: {err}"
        assert re.search(r"found label\]? \[?7\]? \[?at position\]? \[?4", str(err)), str(err)
        return
    assert keras.backend.backend() == "tensorflow", "jax accepted a bad label under jit"
    assert np.isnan(history.history["loss"][0]), history.history
    assert np.array_equal(numpy_of(keras, layer.centers), c), "a bad label moved the centers"
    assert int(numpy_of(keras, layer.skipped_updates)) == 1
    model.fit([x, y], y, batch_size=N, shuffle=False, verbose=0)  # a good batch still steps
    assert not np.array_equal(numpy_of(keras, layer.centers), c)


def check_narrow_integer_labels(keras, CenterLoss):
    """uint8/int8/int16/uint16/uint32 class ids give the int32 result (tensorflow's gather and
    segment_sum take int32/int64 indices only)."""
    x, y, c = batch(12)
    want = fresh_layer(keras, CenterLoss, c)
    want([x, y], training=True)
    want_loss = numpy_of(keras, want.losses[-1])
    for dtype in ("uint8", "int8", "int16", "uint16", "uint32"):
        layer = fresh_layer(keras, CenterLoss, c)
        layer([x, y.astype(dtype)], training=True)
        close(numpy_of(keras, layer.losses[-1]), want_loss, dtype)
        assert np.array_equal(numpy_of(keras, layer.centers), numpy_of(keras, want.centers)), dtype


def check_example_short_run(keras, CenterLoss):
    """examples/keras_fashion_mnist.py, a few steps on real Fashion-MNIST, in this process."""
    import contextlib
    import importlib.util
    import io

    path = Path(__file__).resolve().parents[2] / "examples" / "keras_fashion_mnist.py"
    spec = importlib.util.spec_from_file_location("keras_fashion_mnist", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        argv = ["--steps", "3", "--eval-samples", "256", "--quiet"]
        assert example.main(argv + ["--backend", keras.backend.backend()]) == 0
    text = printed.getvalue()
    accuracy = re.search(r"test accuracy: ([0-9.]+) on 256 images", text)
    assert accuracy and 0.0 <= float(accuracy.group(1)) <= 1.0, text
    assert "skipped center updates: 0" in text, text


def check_function_gives_zero_center_gradient_for_a_nan_batch(keras, CenterLoss):
    """centerloss.keras.center_loss itself (not only the layer) guards the centers' gradient."""
    from centerloss.keras import center_loss

    x, y, c = batch(11)
    x[3, 0] = np.nan
    for margin in (0.0, 0.5):
        g = gradient(keras, lambda k: center_loss(x, y, k, margin, "sum"), c)
        assert np.array_equal(g, np.zeros_like(c)), f"margin {margin}: {g}"


def check_fit_step_touches_only_the_batch_rows(keras, CenterLoss):
    """The compiled fit step reads and writes only the rows of the batch's classes (the O(N * D)
    step of docs/keras.md): on jax no copy of the [K, D] table in the compiled step (its rows
    are updated in place in the donated state); on tensorflow the only ops on the centers
    variable are ResourceGather and ResourceScatterUpdate (no read or assignment of the whole
    table). torch runs the C++ op, sparse by construction (tests/python/test_op_reference.py)."""
    backend = keras.backend.backend()
    if backend == "torch":
        return
    big_k = 4099  # a shape no other tensor of the model has
    x, y, _ = batch(14)
    features_in = keras.Input((D,))
    labels_in = keras.Input((), dtype="int32")
    layer = CenterLoss(big_k, weight=0.5)
    model = keras.Model([features_in, labels_in],
                        layer([keras.layers.Dense(D)(features_in), labels_in]))
    model.compile(keras.optimizers.SGD(0.1))
    model.fit([x, y], batch_size=N, epochs=1, verbose=0)
    if backend == "jax":
        import jax

        state = tuple([v.value for v in variables] for variables in (
            model.trainable_variables, model.non_trainable_variables,
            model.optimizer.variables, model.metrics_variables))
        text = jax.jit(model.train_step, donate_argnums=0).lower(state, ((x, y),)).compile().as_text()
        table = f"f32[{big_k},{D}]"
        copies = [line.strip() for line in text.splitlines() if table in line and " copy(" in line]
        assert not copies, copies
        assert any(table in line and "scatter" in line for line in text.splitlines())
        return
    import tensorflow as tf

    step = tf.function(lambda f, labels: layer([f, labels], training=True))
    graph = step.get_concrete_function(tf.TensorSpec([None, D]), tf.TensorSpec([None], tf.int32)).graph
    handle = next(inner for outer, inner in graph.captures
                  if outer is layer.centers.value.handle)
    uses = sorted({op.type for op in graph.get_operations()
                   if any(t is handle for t in op.inputs)})
    assert uses == ["ResourceGather", "ResourceScatterUpdate"], uses


def isolated_model(keras, CenterLoss, num_classes, feature_dim, **options):
    """features (an input) -> CenterLoss: a fit step is the layer's step alone."""
    features_in = keras.Input((feature_dim,))
    labels_in = keras.Input((), dtype="int32")
    layer = CenterLoss(num_classes, name="center_loss", **options)
    model = keras.Model([features_in, labels_in], layer([features_in, labels_in]))
    model.compile(keras.optimizers.SGD(0.0))
    return model, layer


def check_fit_step_repeats_bitwise(keras, CenterLoss):
    """Two runs of the same fit steps (batches with many repeated classes) give the same bits."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(4 * 256, 16)).astype("float32")
    y = rng.integers(0, 40, size=len(x)).astype("int32")
    runs = []
    for _ in range(2):
        model, layer = isolated_model(keras, CenterLoss, 40, 16, init="first_sight")
        model.fit([x, y], batch_size=256, epochs=2, shuffle=False, verbose=0)
        runs.append(numpy_of(keras, layer.centers))
    assert np.array_equal(runs[0], runs[1]), np.max(np.abs(runs[0] - runs[1]))


def check_fit_skips_a_nan_batch(keras, CenterLoss):
    """Inside the compiled fit step a batch with a NaN moves no center and is counted; the
    other batches of the epoch step as usual."""
    x, y, c = batch(16)
    x = np.concatenate([x, x + 1.0])
    y = np.concatenate([y, y])
    x[N + 2, 1] = np.nan  # in the second batch only
    model, layer = isolated_model(keras, CenterLoss, K, D)
    layer.centers.assign(c)
    model.fit([x, y], batch_size=N, epochs=1, shuffle=False, verbose=0)
    close(numpy_of(keras, layer.centers), reference_step(c, x[:N], y[:N], 0.5, "paper"),
          "the first batch's step only")
    assert int(numpy_of(keras, layer.skipped_updates)) == 1


def check_torch_is_imported_only_on_the_torch_backend(keras, CenterLoss):
    """centerloss.keras imports torch (and loads the compiled library) only on the torch
    backend, though torch is installed here; on jax and tensorflow none of the checks before
    this one (they run in name order) nor a fit step imported it."""
    x, y, _ = batch(17)
    model, _ = isolated_model(keras, CenterLoss, K, D)
    model.fit([x, y], batch_size=N, epochs=1, verbose=0)
    on_torch = keras.backend.backend() == "torch"
    assert ("torch" in sys.modules) == on_torch, sorted(m for m in sys.modules if "torch" in m)
    assert ("centerloss._ops" in sys.modules) == on_torch


def check_question_model_quick_run(keras, CenterLoss):
    """examples/keras_question_model.py --quick (the question's 100x100x3 model, a few steps on
    real Fashion-MNIST), in this process."""
    import contextlib
    import importlib.util
    import io

    path = Path(__file__).resolve().parents[2] / "examples" / "keras_question_model.py"
    spec = importlib.util.spec_from_file_location("keras_question_model", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with contextlib.redirect_stdout(io.StringIO()):
        result = example.main(["--quick", "--backend", keras.backend.backend()])
    assert result["backend"] == keras.backend.backend() and result["steps"] == 3, result
    assert result["test_images"] == 128 and 0.0 <= result["test_accuracy"] <= 1.0, result
    assert result["skipped_center_updates"] == 0 and result["test_center_loss"] > 0, result


CHECKS = [value for name, value in sorted(globals().items()) if name.startswith("check_")]


# ---- numbers that test_keras.py compares across backends ----
def gradient(keras, fn, value):
    """d fn / d value by the backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        t = torch.tensor(value, requires_grad=True)
        fn(t).backward()
        return t.grad.numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(jax.numpy.asarray(value)))
    import tensorflow as tf

    t = tf.constant(value)
    with tf.GradientTape() as tape:
        tape.watch(t)
        result = fn(t)
    return tf.convert_to_tensor(tape.gradient(result, t)).numpy()  # gather gives IndexedSlices


def parity_values(keras, CenterLoss, center_loss):
    x, y, c = batch(10, n=16)
    values = {}
    for margin in (0.0, 0.8):
        for reduction in ("none", "mean", "sum"):
            loss = numpy_of(keras, center_loss(x, y, c, margin, reduction))
            close(loss, reference_loss(c, x, y, margin, reduction), f"{reduction} {margin}")
            values[f"loss_{reduction}_margin{margin}"] = loss.tolist()
        values[f"grad_features_margin{margin}"] = gradient(
            keras, lambda f: center_loss(f, y, c, margin, "mean"), x).tolist()
        values[f"grad_centers_margin{margin}"] = gradient(
            keras, lambda k: center_loss(x, y, k, margin, "sum"), c).tolist()
    expected = (x - c[y]) / len(y)  # spec section 2, margin 0
    close(values["grad_features_margin0.0"], expected, "dL/dx, margin 0")
    for rule in ("paper", "mean"):
        layer = fresh_layer(keras, CenterLoss, c, alpha=0.5, update=rule)
        for step in range(5):
            xs, ys, _ = batch(20 + step, n=16)
            layer([xs, ys], training=True)
        values[f"centers_after_5_steps_{rule}"] = numpy_of(keras, layer.centers).tolist()
    return values


def main(out_path: str) -> int:
    import keras

    from centerloss.keras import CenterLoss, center_loss

    results = {"backend": keras.backend.backend(), "checks": {}, "parity": {}, "seconds": {}}
    for check in CHECKS:
        start = time.perf_counter()
        try:
            keras.utils.set_random_seed(0)
            check(keras, CenterLoss)
            results["checks"][check.__name__] = "ok"
        except Exception:
            results["checks"][check.__name__] = traceback.format_exc()
        results["seconds"][check.__name__] = round(time.perf_counter() - start, 2)
    try:
        results["parity"] = parity_values(keras, CenterLoss, center_loss)
    except Exception:
        results["parity_error"] = traceback.format_exc()
    Path(out_path).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
