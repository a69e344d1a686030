"""The JAX structured layers (``linops.nn.jax``): outputs and gradients against independent dense formulas,
μP init statistics and learning-rate multipliers, jit/grad/vmap, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from linops.operators.monarch import mup_std, shuffle
from tests.helpers import assert_on_device, jdev

jax = pytest.importorskip("jax")
jnp = jax.numpy
lnj = pytest.importorskip("linops.nn.jax")

# (name, init function, in, out, keyword arguments): square and rectangular shapes of each layer kind
LAYERS = [
    ("monarch-square", lnj.monarch_init, 16, 16, {"nblocks": 4}),
    ("monarch-wide", lnj.monarch_init, 16, 48, {"nblocks": 4}),
    ("monarch-narrow", lnj.monarch_init, 48, 12, {"nblocks": 2}),
    ("btt-square-r2", lnj.btt_init, 16, 16, {"rank": 2}),
    ("btt-rect-r3", lnj.btt_init, 12, 30, {"rank": 3}),
    ("btt-3cores", lnj.btt_init, 8, 12, {"cores": 3, "rank": 2}),
    ("dense", lnj.dense_init, 12, 10, {}),
]
IDS = [case[0] for case in LAYERS]
TOLERANCE = {"float64": 1e-10, "float32": 1e-5, "bfloat16": 3e-2}


def dense_weight(params, xp=jnp):
    """The layer's weight (out, in) from the published formulas, in jnp, independent of the operators.

    Monarch = P_{l,s}·BD(L)·P_{r,l}·BD(R); BTT with cores (nblocks_k, n_k, r_k, m_k, r_{k−1}):
    W[(a1,a2),(i2,i1)] = Σ_ρ C2[a1,a2,0,i2,ρ]·C1[i2,a1,ρ,i1,0] and, for three cores,
    W[a1,a2,a3,i3,i2,i1] = Σ C1[(i3,i2),a1,ρ1,i1,0]·C2[(a1,i3),a2,ρ2,i2,ρ1]·C3[(a1,a2),a3,0,i3,ρ2]."""
    if "weight" in params:
        return params["weight"]
    if "cores" in params and len(params["cores"]) == 3:
        C1, C2, C3 = params["cores"]
        (_, n1, r1, m1, _), (_, n2, r2, m2, _), (_, n3, _, m3, _) = C1.shape, C2.shape, C3.shape
        W6 = xp.einsum("zyarx,azbsyr,abczs->abczyx", C1.reshape(m3, m2, n1, r1, m1),
                        C2.reshape(n1, m3, n2, r2, m2, r1), C3.reshape(n1, n2, n3, m3, r2))
        return W6.reshape(n1 * n2 * n3, m3 * m2 * m1)
    if "cores" in params:
        C1, C2 = params["cores"]
        (m2, n1, _, m1, _), n2 = C1.shape, C2.shape[1]
        W4 = xp.einsum("xyir,ixrz->xyiz", C2[:, :, 0], C1[..., 0])
        return W4.reshape(n1 * n2, m2 * m1)
    L, R = params["L"], params["R"]
    (nl, s, r) = L.shape
    block_diag = scipy.linalg.block_diag if xp is np else jax.scipy.linalg.block_diag
    block_l, block_r = block_diag(*L), block_diag(*R)
    return block_l[shuffle(nl, s)] @ block_r[shuffle(r, nl)]


def make(case, dtype, seed=0):
    """The parameters of ``case`` on the test device, with a nonzero bias (so that adding it is tested)."""
    _, init, n_in, n_out, kwargs = case
    params = init(jax.random.key(seed), n_in, n_out, dtype=dtype, **kwargs)
    params["bias"] = jax.random.normal(jax.random.key(seed + 1), (n_out,), dtype)
    return jax.device_put(params, jdev())


@pytest.mark.parametrize("case, dtype", [(case, "float64") for case in LAYERS]
                         + [(LAYERS[0], "float32"), (LAYERS[0], "bfloat16"), (LAYERS[4], "bfloat16")],
                         ids=[f"{name}-float64" for name in IDS]
                         + [f"{IDS[0]}-float32", f"{IDS[0]}-bfloat16", f"{IDS[4]}-bfloat16"])
def test_output_is_the_dense_weight_times_the_input(case, dtype):
    params = make(case, dtype)
    n_in = case[2]
    x = jax.device_put(jax.random.normal(jax.random.key(7), (2, 3, n_in), dtype), jdev())
    y = jax.jit(lnj.apply)(params, x)
    assert y.dtype == jnp.dtype(dtype) and y.shape == (2, 3, case[3])
    assert_on_device(y)
    as64 = jax.tree.map(lambda a: np.asarray(a, "float64"), params)
    expected = np.asarray(x, "float64") @ dense_weight(as64, np).T + as64["bias"]
    # the operator's to_dense is the same matrix
    np.testing.assert_allclose(np.asarray(lnj.operator(as64).to_dense()), dense_weight(as64, np), atol=1e-12)
    error = np.max(np.abs(np.asarray(y, "float64") - expected)) / np.max(np.abs(expected))
    assert error < TOLERANCE[dtype], error


@pytest.mark.parametrize("case", LAYERS, ids=IDS)
def test_gradients_match_autograd_of_the_dense_weight(case):
    params = make(case, "float64")
    x = jax.device_put(jax.random.normal(jax.random.key(3), (5, case[2]), "float64"), jdev())
    G = jax.random.normal(jax.random.key(4), (5, case[3]), "float64")

    def structured(p, x):
        return jnp.sum(lnj.apply(p, x) * G)

    def reference(p, x):
        return jnp.sum((x @ dense_weight(p).T + p["bias"]) * G)

    got = jax.jit(jax.grad(structured, argnums=(0, 1)))(params, x)  # under jit: the layer's trace is jit-safe
    want = jax.jit(jax.grad(reference, argnums=(0, 1)))(params, x)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10)


def test_vmap_and_vectors():
    params = make(LAYERS[3], "float64")
    xs = jax.random.normal(jax.random.key(5), (4, 16), "float64")
    stacked = jax.vmap(lnj.apply, in_axes=(None, 0))(params, xs)
    np.testing.assert_allclose(np.asarray(stacked), np.asarray(lnj.apply(params, xs)), rtol=1e-12)
    assert lnj.apply(params, xs[0]).shape == (16,)


def spectral_norm(params, iterations=30):
    """‖W‖₂ of a layer's weight: power iteration on WᵀW with its dense matrix (a few percent accurate)."""
    M = dense_weight(jax.tree.map(lambda a: np.asarray(a, "float64"), params), np)
    v = np.random.default_rng(0).standard_normal(M.shape[1])
    for _ in range(iterations):
        v = M.T @ (M @ v)
        v /= np.linalg.norm(v)
    return float(np.linalg.norm(M @ v))


@pytest.mark.parametrize("kind", ["monarch-sqrt", "btt-r4", "dense"])
def test_mup_init_keeps_the_spectral_norm_at_sqrt_out_over_in_across_widths(kind):
    """μP's spectral condition ‖W‖₂ = Θ(√(d_out/d_in)): the ratio stays in a narrow band from width 64 to
    256 (square) and for a 4:1 rectangle, and every factor has the μP std of its blocks (the torch
    layers, which share the init formulas, are checked up to width 1024 in test_nn_torch.py)."""
    ratios = []
    for n_in, n_out in [(64, 64), (256, 256), (256, 64)]:
        key = jax.random.key(n_in + 3 * n_out)
        if kind.startswith("monarch"):
            params = lnj.monarch_init(key, n_in, n_out, int(np.sqrt(min(n_in, n_out))), dtype="float32")
        elif kind.startswith("btt"):
            cores, rank = (3, 2) if kind == "btt-3cores" else (2, int(kind[-1]))
            params = lnj.btt_init(key, n_in, n_out, cores, rank, dtype="float32")
        else:
            params = lnj.dense_init(key, n_in, n_out, dtype="float32")
        W = lnj.operator(params)
        factors = [(params["weight"], n_in, n_out)] if kind == "dense" else W.factors()
        for factor, d_in, d_out in factors:
            assert abs(float(jnp.std(factor)) / mup_std(d_in, d_out) - 1) < 0.1
        ratios.append(spectral_norm(params) / np.sqrt(n_out / n_in))
    assert min(ratios) > 0.7 and max(ratios) < 4.5 and max(ratios) / min(ratios) < 2.5, ratios


@pytest.mark.parametrize("params, expected", [
    (lnj.monarch_init(jax.random.key(0), 64, 64, 8), {"L": 4.0, "R": 4.0, "bias": 1.0}),  # b/2 each
    (lnj.monarch_init(jax.random.key(0), 64, 32, 4, bias=False), {"L": 4.0, "R": 2.0}),  # 64/(d_in·2)
    (lnj.btt_init(jax.random.key(0), 64, 64, rank=2), {"cores": (4.0, 2.0), "bias": 1.0}),  # √d/2, √d/(2r)
    (lnj.btt_init(jax.random.key(0), 256, 256, rank=1, bias=False), {"cores": (8.0, 8.0)}),
    (lnj.btt_init(jax.random.key(0), 64, 64, 3, rank=2, bias=False), {"cores": (16 / 3, 8 / 3, 8 / 3)}),  # 64/(3·d_in)
    (lnj.dense_init(jax.random.key(0), 8, 4), {"weight": 1.0, "bias": 1.0}),
], ids=["monarch-b8", "monarch-rect", "btt-r2", "btt-r1", "btt-3cores", "dense"])
def test_mup_lr_multipliers(params, expected):
    multipliers = lnj.mup_lr_multipliers(params)
    assert jax.tree.structure(multipliers) == jax.tree.structure(expected)
    np.testing.assert_allclose(jax.tree.leaves(multipliers), jax.tree.leaves(expected), rtol=1e-12)
    assert jax.tree.structure(multipliers) == jax.tree.structure(params)
    # lr tuned for a dense layer of width 256: every weight factor's rate × 256/in, the bias's unchanged
    scaled = lnj.mup_lr_multipliers(params, base_width=256)
    in_features = params["weight"].shape[1] if "weight" in params else lnj.operator(params).shape[1]
    for name, value in multipliers.items():
        factor = 1.0 if name == "bias" else 256 / in_features
        np.testing.assert_allclose(scaled[name], np.multiply(value, factor), rtol=1e-12)


def test_standard_init_is_the_per_block_fan_in_rule():
    params = lnj.monarch_init(jax.random.key(1), 256, 128, 4, init="standard", dtype="float64")
    for factor in (params["L"], params["R"]):
        assert abs(float(jnp.std(factor)) * factor.shape[-1] ** 0.5 - 1) < 0.05
    assert not jnp.any(params["bias"])


def test_defaults_and_operator_functions():
    import linops as lo

    params = lnj.monarch_init(jax.random.key(2), 16, 16)
    assert params["L"].dtype == jax.dtypes.canonicalize_dtype(jnp.float64)  # JAX's default float
    W = lnj.operator(params)
    assert isinstance(W, lo.Monarch)
    _, logabs = lo.slogdet(W)
    np.testing.assert_allclose(float(logabs), np.linalg.slogdet(np.asarray(W.to_dense()))[1], rtol=1e-10)
    cores = lnj.btt_init(jax.random.key(0), 12, 30, in_shape=(2, 6), out_shape=(5, 6))["cores"]
    assert [C.shape for C in cores] == [(2, 5, 1, 6, 1), (5, 6, 1, 2, 1)]


@pytest.mark.parametrize("call, message", [
    (lambda: lnj.monarch_init(jax.random.key(0), 30, 16, 4), "must divide"),
    (lambda: lnj.monarch_init(jax.random.key(0), 16, 16, 4, init="xavier"), "init must be one of"),
    (lambda: lnj.btt_init(jax.random.key(0), 16, 16, in_shape=(3, 5)), "must be 2 factors of 16"),
    (lambda: lnj.btt_init(jax.random.key(0), 16, 16, cores=1), "cores must be"),
    (lambda: lnj.operator({"w": jnp.ones((2, 2))}), "not the parameters"),
    (lambda: lnj.apply(lnj.dense_init(jax.random.key(0), 4, 3), jnp.ones((2, 5))), r"valid shapes are \(\.\.\., 4\)"),
], ids=["nblocks", "init", "btt-shape", "btt-cores", "params", "x-width"])
def test_errors_name_the_valid_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
