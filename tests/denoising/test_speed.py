"""JiT's speed: compiled by default where it pays, never in a smoke run, the same numbers as eager,
the same checkpoint keys, and timed against a bare loop that is compiled alike."""

import pytest
import torch

from vitbench.bench.timing import BareLoop, Windows
from vitbench.denoising import DenoiserModule

TINY_JIT = dict(width=32, depth=2, num_heads=2, bottleneck_dim=8, qk_norm=True, norm="rms", mlp="swiglu")


def test_jit_compiles_by_default_but_not_in_a_smoke_run(compose_cfg):
    assert compose_cfg("model=jit").model.compile is True
    assert compose_cfg("model=dit").model.compile is False  # 1.1x here: a cold compilation does not pay
    assert compose_cfg("model=jit_classifier").model.compile is True
    assert compose_cfg("model=jit", "debug=fast").model.compile is False
    assert compose_cfg("model=jit", "debug=fast", "model.compile=true").model.compile is True


def test_the_bare_loop_compiles_its_copy_as_the_trainer_does():
    model = DenoiserModule(**TINY_JIT, feature_cnn=None, compile=True)
    x, y = torch.randn(4, 1, 28, 28), torch.arange(4)
    loop = BareLoop(model, x, y, Windows(1, 1, 1))
    assert loop.model.net._compiled_call_impl is not None  # compiled lazily: nothing has run yet
    assert model.net._compiled_call_impl is None  # the model vitbench fits is compiled by its Trainer
    eager = BareLoop(DenoiserModule(**TINY_JIT, feature_cnn=None), x, y, Windows(1, 1, 1))
    assert eager.model.net._compiled_call_impl is None


@pytest.mark.slow
def test_compiled_jit_trains_as_the_eager_one():
    """Three optimizer steps from the same weights and draws: the same losses and weights within float
    rounding, every network call compiled, the same state_dict keys (checkpoints load either way)."""
    x, y = torch.randn(8, 1, 28, 28).clamp(-2, 2), torch.arange(8)
    runs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = DenoiserModule(**TINY_JIT, feature_cnn=None, compile=compiled)
        model.configure_model()  # what the Trainer calls
        calls: list[bool] = []
        model.net.register_forward_pre_hook(
            lambda net, args, calls=calls: calls.append(torch.compiler.is_compiling())
        )
        optimizer = model.configure_optimizers()
        losses = []
        for _ in range(3):
            loss, _ = model.training_loss(x, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            model.after_optimizer_step()
            losses.append(loss.item())
        runs[compiled] = (model, losses, calls)
    (eager, eager_losses, eager_calls), (fast, fast_losses, fast_calls) = runs[False], runs[True]
    assert eager_calls == [False] * 3 and fast_calls == [True] * 3
    assert fast_losses == pytest.approx(eager_losses, rel=1e-4)
    assert list(fast.state_dict()) == list(eager.state_dict())
    for (name, a), b in zip(eager.state_dict().items(), fast.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
