"""Deployment cost: ONNX Runtime's float32 logits equal PyTorch's, int8 quantization covers a share of the
weights known by hand and keeps the accuracy, latencies are medians and 90th percentiles of interleaved
calls, the thread count comes back, and the latency part writes its keys."""

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from vitbench.data.augment import normalize
from vitbench.data.datamodule import ImageDataModule
from vitbench.evaluation import evaluate, quantization
from vitbench.evaluation.context import Context, EvaluateError
from vitbench.evaluation.deployment import calibration_images, deployment, write_models
from vitbench.evaluation.evaluate import main
from vitbench.evaluation.latency import latency, latency_figures, median_p90, time_interleaved, torch_threads
from vitbench.evaluation.parts import PARTS


def context_of(run: Path) -> Context:
    classifier = evaluate.load_classifier(run)
    datamodule = ImageDataModule.from_hparams(classifier.data)
    datamodule.setup()
    return Context(classifier, datamodule, torch.device("cpu"), 0, run)


@pytest.fixture(scope="module")
def exported(finished_vit_run, tmp_path_factory) -> tuple[Context, dict[str, float]]:
    """The tiny ViT run's context and its ONNX files (written once: the export takes seconds)."""
    run = Path(shutil.copytree(finished_vit_run, tmp_path_factory.mktemp("deployment") / "run"))
    context = context_of(run)
    return context, write_models(context, run / "deployment")


def test_onnx_runtime_fp32_logits_equal_pytorchs(exported):
    context, _ = exported
    images, _ = context.test_split()
    session = quantization.session(context.folder / "deployment" / "model.onnx", threads=1)
    got = quantization.ort_logits(session, images, context.classifier.data, batch_size=50)
    expected = context.predict(images)  # the run tested in float32 (32-true)
    assert context.classifier.precision == "32-true"
    assert got.shape == expected.shape == (128, context.num_classes)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_int8_quantizes_most_weights_and_keeps_the_accuracy(exported):
    context, found = exported
    # The ViT's weights sit in MatMul/Gemm: dynamic quantization, all but the norms, biases and embeddings.
    assert found["conv_weight_fraction"] < quantization.STATIC_CONV_SHARE
    assert 0.5 < found["int8_weight_fraction"] < 1
    assert found["onnx_mb_int8"] < found["onnx_mb_fp32"]
    images, labels = context.test_split()
    session = quantization.session(context.folder / "deployment" / "model_int8.onnx", threads=1)
    int8 = quantization.ort_logits(session, images, context.classifier.data, batch_size=64).argmax(-1)
    fp32 = context.predict(images).argmax(-1)
    assert float((int8 == fp32).float().mean()) >= 0.9
    assert abs(float((int8 == labels).float().mean()) - float((fp32 == labels).float().mean())) <= 0.05
    # Written whole: nothing but the two models in the folder.
    assert sorted(p.name for p in (context.folder / "deployment").iterdir()) == [
        "model.onnx",
        "model_int8.onnx",
    ]


def test_static_calibration_reads_validation_images_never_test(exported):
    context, _ = exported
    val = torch.cat([x for x, _ in context.datamodule.val_dataloader()])  # uint8 (N, C, H, W)
    data = context.classifier.data
    expected = normalize(val[:100], data["mean"], data["std"], data.get("img_size"))
    torch.testing.assert_close(calibration_images(context), expected)


def linear_model(path: Path) -> None:
    """x (1, 4) @ W (4, 8) + b (8,): 32 weight and 8 bias elements."""
    w = numpy_helper.from_array(np.arange(32, dtype=np.float32).reshape(4, 8) / 31 - 0.5, "W")
    b = numpy_helper.from_array(np.zeros(8, dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["image", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["logits"])],
        "linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 8])],
        [w, b],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_the_int8_weight_fraction_by_hand(tmp_path):
    linear_model(tmp_path / "fp32.onnx")
    quantization.quantize(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", calibration=None)
    fp32, int8 = onnx.load(tmp_path / "fp32.onnx"), onnx.load(tmp_path / "int8.onnx")
    assert quantization.conv_weight_fraction(fp32) == 0
    # The 32 MatMul weights become int8, the 8 biases stay float: 32 / 40.
    assert quantization.int8_weight_fraction(fp32, int8) == pytest.approx(0.8)
    assert quantization.int8_weight_fraction(fp32, fp32) == 0


def test_static_quantization_of_a_convolution(tmp_path):
    # Conv 2 -> 3 channels, 3x3: 54 kernel and 3 bias elements; static QDQ, calibrated on 20 images.
    w = numpy_helper.from_array(np.linspace(-1, 1, 54, dtype=np.float32).reshape(3, 2, 3, 3), "K")
    b = numpy_helper.from_array(np.zeros(3, dtype=np.float32), "c")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "K", "c"], ["logits"])],
        "conv",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 2, 5, 5])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 3, 3, 3])],
        [w, b],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "fp32.onnx")
    fp32 = onnx.load(tmp_path / "fp32.onnx")
    assert quantization.conv_weight_fraction(fp32) == pytest.approx(54 / 57)
    images = torch.randn(20, 2, 5, 5, generator=torch.Generator().manual_seed(0))
    quantization.quantize(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", calibration=images)
    assert quantization.int8_weight_fraction(fp32, onnx.load(tmp_path / "int8.onnx")) == pytest.approx(
        54 / 57
    )
    x = images[:2].numpy()
    got = quantization.session(tmp_path / "int8.onnx", 1).run(["logits"], {"image": x})[0]
    expected = quantization.session(tmp_path / "fp32.onnx", 1).run(["logits"], {"image": x})[0]
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()


def test_median_and_p90_by_hand():
    # 1..10: the median halfway between 5 and 6; p90 at rank 0.9 x 9 = 8.1 -> 9 + 0.1.
    assert median_p90([float(v) for v in range(10, 0, -1)]) == pytest.approx((5.5, 9.1))
    found = latency_figures({"eager": [2.0, 1.0, 3.0]}, threads=2)
    assert found == pytest.approx({"latency_ms_eager_t2": 2.0, "latency_p90_ms_eager_t2": 2.8})


def test_calls_are_interleaved_round_robin():
    calls = []
    runners = {name: functools.partial(calls.append, name) for name in "abc"}
    times = time_interleaved(runners, calls=4, warmup=1)
    assert calls == list("abcbcacababcbca")  # each round starts one runner later
    assert {name: len(ms) for name, ms in times.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(t > 0 for ms in times.values() for t in ms)


def test_the_thread_count_comes_back_even_after_an_error():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(2):
        raise RuntimeError("a runtime failed")
    assert torch.get_num_threads() == before


def test_the_latency_part_writes_its_keys(run, monkeypatch, capsys):
    before = torch.get_num_threads()
    monkeypatch.setitem(PARTS, "latency", functools.partial(latency, calls=10))

    assert main([str(run), "--parts", "latency"]) == 0

    record = json.loads((run / "results.json").read_text())
    keys = [f"latency{p}_ms_eager_t{t}" for t in (1, 2) for p in ("", "_p90")]
    assert record["evaluation"]["latency"]["keys"] == keys
    assert record["evaluation"]["latency"]["pictures"] == ["pictures/latency.png"]
    for t in (1, 2):
        assert 0 < record[f"latency_ms_eager_t{t}"] <= record[f"latency_p90_ms_eager_t{t}"]
    assert torch.get_num_threads() == before


def test_without_onnx_runtime_the_part_refuses_in_one_line(monkeypatch):
    real = quantization.importlib.util.find_spec
    monkeypatch.setattr(
        quantization.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name)
    )
    with pytest.raises(
        EvaluateError, match=r"^the deployment part needs onnxruntime .*pip install 'vitbench\[export\]'\.$"
    ):
        quantization.check_onnx_runtime()


@pytest.mark.slow
def test_the_deployment_part_end_to_end(run):
    # torch.compile takes 15-45 s here (inductor compiles C++): slow.
    before = torch.get_num_threads()
    found = deployment(context_of(run), calls=5)
    for runtime in ("compile", "ort_fp32", "ort_int8"):
        for t in (1, 2):
            assert 0 < found[f"latency_ms_{runtime}_t{t}"] <= found[f"latency_p90_ms_{runtime}_t{t}"]
    assert not any("eager" in k for k in found if k.startswith("latency"))  # the latency part's
    assert 0 <= found["int8_acc"] <= 1 and found["throughput_eager"] > 0 and found["compile_s"] > 0
    assert (run / "pictures" / "deployment.png").is_file()
    assert torch.get_num_threads() == before
