"""linops.nn (PyTorch): layer outputs against the dense matrix of their operator (fp64, fp32, bf16),
gradients against autograd of the dense weight, μP init statistics across widths and the μP learning
rates, from_dense round trips, state_dict save/load, torch.compile, lazy import."""

from __future__ import annotations

import io
import math
import os
import pathlib
import subprocess
import sys

import pytest
import torch

import linops as lo
import linops.nn as lnn
from linops.operators.btt import BTT
from linops.operators.monarch import Monarch
from tests.helpers import tdev

# (name, constructor): small layers covering square / rectangular, 2 / 3 / 4 cores, several ranks
LAYERS = [
    ("monarch-16-16-nb4", lambda **kw: lnn.MonarchLinear(16, 16, nblocks=4, **kw)),
    ("monarch-24-12-nb4", lambda **kw: lnn.MonarchLinear(24, 12, nblocks=4, **kw)),
    ("monarch-12-24-nb2-bmid5", lambda **kw: lnn.MonarchLinear(12, 24, nblocks=2, b_mid=5, **kw)),
    ("btt2-16-12-r2", lambda **kw: lnn.BTTLinear(16, 12, cores=2, rank=2, **kw)),
    ("btt3-24-18-r(2,3)", lambda **kw: lnn.BTTLinear(24, 18, cores=3, rank=(2, 3), **kw)),
    ("btt4-16-16-r2", lambda **kw: lnn.BTTLinear(16, 16, cores=4, rank=2, **kw)),
    ("dense-8-6", lambda **kw: lnn.DenseLinear(8, 6, **kw)),
    ("monarch-nobias", lambda **kw: lnn.MonarchLinear(8, 8, nblocks=2, bias=False, **kw)),
]
DTYPES = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2}


def _layer(make, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    layer = make(dtype=dtype, device=tdev(), **kw)
    if layer.bias is not None:  # a nonzero bias, so that it is tested
        with torch.no_grad():
            layer.bias.normal_()
    return layer


@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
@pytest.mark.parametrize("name,make", LAYERS, ids=[n for n, _ in LAYERS])
def test_output_is_dense_operator_times_input(name, make, dtype):
    layer = _layer(make, dtype).requires_grad_(False)
    x = torch.randn(2, 3, layer.in_features, dtype=dtype, device=tdev())
    y = layer(x)
    assert y.shape == (2, 3, layer.out_features) and y.dtype == dtype
    if isinstance(layer, lnn.DenseLinear) and dtype == torch.bfloat16:  # lo.Dense refuses 16-bit floats
        with pytest.raises(TypeError, match=r"Dense: unsupported dtype torch\.bfloat16"):
            layer.operator
        W = layer.weight.double()
    else:
        W = layer.operator.to_dense().double()  # the operator's matrix, exact in float64
    expected = x.double() @ W.T + (0 if layer.bias is None else layer.bias.detach().double())
    scale = expected.abs().max()
    assert float((y.double() - expected).abs().max()) <= DTYPES[dtype] * float(scale) * 4
    assert W.shape == (layer.out_features, layer.in_features)
    assert layer.macs == sum(p.numel() for p, _, _ in layer.factors())


@pytest.mark.parametrize("name,make", LAYERS, ids=[n for n, _ in LAYERS])
def test_gradients_match_autograd_of_the_dense_weight(name, make):
    layer = _layer(make)
    x = torch.randn(5, layer.in_features, dtype=torch.float64, device=tdev(), requires_grad=True)
    g = torch.randn(5, layer.out_features, dtype=torch.float64, device=tdev())
    (layer(x) * g).sum().backward()
    params = [p for p, _, _ in layer.factors()]
    # reference: y = x Wᵀ + b with W dense; dL/dW = gᵀ x pulled back to the factors through to_dense
    W = layer.operator.to_dense()
    expected = torch.autograd.grad(W, params, grad_outputs=g.T @ x.detach())
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.grad, e, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x.grad, g @ W.detach(), rtol=1e-10, atol=1e-12)
    if layer.bias is not None:
        torch.testing.assert_close(layer.bias.grad, g.sum(0))


def _spectral_norm(layer):
    return float(torch.linalg.matrix_norm(layer.operator.to_dense().detach().double(), ord=2))


@pytest.mark.parametrize("kind", ["monarch", "btt"])
def test_mup_init_keeps_the_spectral_norm_scale_across_widths(kind):
    """μP: each factor has std d_in^-½·min(1, √(d_out/d_in)), so ‖W‖₂ stays Θ(√(out/in)) as the width
    grows (with √d blocks), while the entries shrink; the factors' sample stds match the formula."""
    norms, ratios = [], []
    for d in (64, 256, 1024):
        b = math.isqrt(d)
        torch.manual_seed(0)
        make = {"monarch": lambda: lnn.MonarchLinear(d, d // 4, nblocks=b, dtype=torch.float32),
                "btt": lambda: lnn.BTTLinear(d, d // 4, cores=2, rank=2, dtype=torch.float32)}[kind]
        layer = make()
        for p, d_in, d_out in layer.factors():
            expected = d_in**-0.5 * min(1.0, math.sqrt(d_out / d_in))
            assert abs(float(p.detach().std()) / expected - 1) < 0.1, (d, p.shape)
        norms.append(_spectral_norm(layer))
        x = torch.randn(64, d)
        ratios.append(float(layer(x).detach().norm() / x.norm()))
    # Θ(1) in the width: ‖W‖₂ and ‖Wx‖/‖x‖ stay within a factor of 2 from d = 64 to 1024 (16×)
    assert max(norms) / min(norms) < 2.0, norms
    assert max(ratios) / min(ratios) < 2.0, ratios
    assert max(ratios) < 1.0  # out = in/4: the μP scale √(out/in) = ½ bounds the typical gain


def test_standard_init_differs_from_mup_only_where_blocks_shrink():
    torch.manual_seed(0)
    mup = lnn.BTTLinear(256, 64, cores=2, rank=4, dtype=torch.float64)
    std = lnn.BTTLinear(256, 64, cores=2, rank=4, init="standard", dtype=torch.float64)
    for (p, d_in, d_out), (q, _, _) in zip(mup.factors(), std.factors(), strict=True):
        ratio = float(p.detach().std() / q.detach().std())
        assert abs(ratio - min(1.0, math.sqrt(d_out / d_in))) < 0.1, (d_in, d_out, ratio)
    assert torch.count_nonzero(mup.bias) == 0
    with pytest.raises(ValueError, match="init must be one of"):
        lnn.MonarchLinear(8, 8, nblocks=2, init="kaiming")


def test_mup_learning_rates_follow_the_formulas():
    d, lr = 1024, 1e-3
    monarch = lnn.MonarchLinear(d, d, nblocks=8)  # κ = b/2 for both factors
    assert [g["lr"] for g in monarch.mup_param_groups(lr)] == pytest.approx([4 * lr, 4 * lr, lr])
    btt = lnn.BTTLinear(d, d, cores=2, rank=4)  # √d factors: κ₁ = √d/2, κ₂ = √d/(2r)
    groups = btt.mup_param_groups(lr, weight_decay=0.1)
    assert [g["lr"] for g in groups] == pytest.approx([16 * lr, 4 * lr, lr])
    assert [g["weight_decay"] for g in groups] == [0.1, 0.1, 0.0]
    dense = lnn.DenseLinear(d, d, bias=False)
    assert [g["lr"] for g in dense.mup_param_groups(lr)] == pytest.approx([lr])
    # lr tuned at base width 256: a dense layer of width 1024 gets lr/4, the structured factors scale alike
    assert dense.mup_param_groups(lr, base_width=256)[0]["lr"] == pytest.approx(lr / 4)
    assert monarch.mup_param_groups(lr, base_width=256)[0]["lr"] == pytest.approx(lr)
    assert monarch.mup_param_groups(lr, base_width=256)[2]["lr"] == pytest.approx(lr)  # the bias: width-free
    # each parameter in exactly one group, and Adam accepts the groups
    model = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), lnn.BTTLinear(64, 64, cores=3),
                                torch.nn.LayerNorm(64), lnn.MonarchLinear(64, 8, nblocks=4))
    groups = lnn.mup_param_groups(model, lr, weight_decay=0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    opt = torch.optim.AdamW(groups)
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(3, 4)).square().sum().backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("cores,rank", [(2, 1), (2, 3), (3, 2), (3, (1, 2))])
def test_btt_layer_from_dense_round_trip(cores, rank):
    torch.manual_seed(1)
    source = lnn.BTTLinear(24, 12, cores=cores, rank=rank, dtype=torch.float64)
    W = source.operator.to_dense().detach()
    layer = lnn.BTTLinear.from_dense(W, source.bias.detach(), cores=cores, rank=rank)
    torch.testing.assert_close(layer.operator.to_dense(), W, rtol=0, atol=1e-12)
    x = torch.randn(4, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(x), source(x))


def test_monarch_layer_from_dense_round_trip_and_projection():
    torch.manual_seed(2)
    source = lnn.MonarchLinear(32, 16, nblocks=4, dtype=torch.float64)
    W = source.operator.to_dense().detach()
    layer = lnn.MonarchLinear.from_dense(W, nblocks=4)
    torch.testing.assert_close(layer.operator.to_dense(), W, rtol=0, atol=1e-12)
    assert layer.bias is None
    A = torch.randn(16, 32, dtype=torch.float64)  # a generic matrix: the projection is the best Monarch
    best = lnn.MonarchLinear.from_dense(A, nblocks=4).operator.to_dense().detach()
    assert float((best - A).norm()) < float((0.9 * best - A).norm())


@pytest.mark.parametrize("name,make", LAYERS[::2], ids=[n for n, _ in LAYERS[::2]])
def test_state_dict_save_and_load(name, make):
    layer = _layer(make, torch.float32, seed=3)
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    fresh = _layer(make, torch.float32, seed=4)
    x = torch.randn(3, layer.in_features)
    assert not torch.equal(fresh(x), layer(x))
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(fresh(x), layer(x), rtol=0, atol=0)
    assert set(layer.state_dict()) == {n for n, _ in layer.named_parameters()}


@pytest.mark.parametrize("name,make", LAYERS[::3], ids=[n for n, _ in LAYERS[::3]])
def test_autocast_runs_in_bfloat16_like_nn_linear(name, make):
    layer = make(device=tdev())
    x = torch.randn(3, layer.in_features, device=tdev())
    with torch.autocast(tdev().type, dtype=torch.bfloat16):
        y = layer(x)
        reference = torch.nn.functional.linear(x, torch.ones(2, layer.in_features, device=tdev()))
    assert y.dtype == reference.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), layer(x).detach(), rtol=5e-2, atol=5e-2)


def test_torch_compile_of_layers():
    """Dynamo traces each layer whole (fullgraph: no graph break) and AOTAutograd its backward; the
    compiled forward and gradients equal the eager ones."""
    torch.manual_seed(5)
    for layer in (lnn.MonarchLinear(16, 8, nblocks=4), lnn.BTTLinear(24, 24, cores=3, rank=2)):
        compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
        x = torch.randn(2, 3, layer.in_features)
        y = compiled(x)
        y.square().sum().backward()
        grads = [p.grad.clone() for p in layer.parameters()]
        layer.zero_grad()
        expected = layer(x)
        expected.square().sum().backward()
        torch.testing.assert_close(y, expected)
        for g, p in zip(grads, layer.parameters(), strict=True):
            torch.testing.assert_close(g, p.grad)


def test_operator_takes_linops_functions_and_passes_gradients():
    torch.manual_seed(6)
    layer = lnn.MonarchLinear(16, 16, nblocks=4, dtype=torch.float64)
    with torch.no_grad():  # well-conditioned blocks: I + small
        layer.L.add_(torch.eye(4))
        layer.R.add_(torch.eye(4))
    M = layer.operator
    assert isinstance(M, Monarch) and M.L is layer.L
    logdet = lo.logdet(M)
    dense = M.to_dense()
    torch.testing.assert_close(logdet, torch.linalg.slogdet(dense)[1])
    logdet.backward()
    torch.testing.assert_close(layer.L.grad, torch.autograd.grad(torch.linalg.slogdet(M.to_dense())[1], layer.L)[0])
    b = torch.randn(16, dtype=torch.float64)
    torch.testing.assert_close(dense @ lo.solve(M, b), b)
    assert "slogdet_monarch" in str(lo.explain(lo.logdet, M))
    assert isinstance(lnn.BTTLinear(8, 8, cores=3).operator, BTT)


def test_default_dtype_device_and_errors():
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert lnn.BTTLinear(8, 8).cores[0].dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert lnn.MonarchLinear(8, 8, nblocks=2).L.dtype == previous
    with pytest.raises(ValueError, match=r"nblocks=3 must divide .* valid: \[1, 2, 4\]"):
        lnn.MonarchLinear(8, 12, nblocks=3)
    with pytest.raises(ValueError, match="must be 2 factors of 12"):
        lnn.BTTLinear(12, 8, in_shape=(3, 5))
    with pytest.raises(ValueError, match="cores must be ≥ 2"):
        lnn.BTTLinear(12, 8, cores=1)
    with pytest.raises(ValueError, match="does not end in in_features=8"):
        lnn.DenseLinear(8, 4)(torch.ones(3, 7))
    with pytest.raises(AttributeError, match="no attribute 'Conv'"):
        lnn.Conv
    assert "jax" in dir(lnn) and "BTTLinear" in dir(lnn)
    assert "nblocks=2, b_mid=4" in repr(lnn.MonarchLinear(8, 8, nblocks=2))


def test_import_linops_nn_imports_no_framework():
    code = "import sys, linops.nn; print('torch' in sys.modules, 'jax' in sys.modules)"
    root = str(pathlib.Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root, env=env)
    assert out.stdout.split() == ["False", "False"]
    pytest.importorskip("jax")
    assert lnn.jax.__name__ == "linops.nn.jax"  # the JAX layers' submodule, loaded on first use
