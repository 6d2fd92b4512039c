"""Every model x data config composes and instantiates; overrides reach the objects."""

from __future__ import annotations

import os

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from vitbench.classification import ImageClassifier
from vitbench.data import ImageDataModule

MODELS = ["vit", "swin", "efficientvit", "cnn"]
DATA = ["fashion_mnist", "cifar10", "cifar100", "imagefolder", "synthetic"]


@pytest.fixture(scope="module")
def seven_classes(tmp_path_factory) -> list[str]:
    """data=imagefolder's overrides: a folder of 7 classes, whose number the source fills in."""
    from data_writers import write_photo_folder

    classes = tuple("abcdefg")
    root = write_photo_folder(
        tmp_path_factory.mktemp("images"), per_class=1, test_per_class=1, classes=classes
    )
    return [f"data.source.root={root}"]


def compose_with_classes(compose_cfg, *overrides: str):
    """The config with data.num_classes filled from the source, as vitbench-train does before the model."""
    cfg = compose_cfg(*overrides)
    datamodule = instantiate(cfg.data)
    cfg.data.num_classes = datamodule.num_classes
    return cfg, datamodule


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_dataset_instantiates(compose_cfg, model, data, seven_classes):
    extra = seven_classes if data == "imagefolder" else []
    cfg, datamodule = compose_with_classes(compose_cfg, f"model={model}", f"data={data}", *extra)
    module = instantiate(cfg.model)
    assert isinstance(datamodule, ImageDataModule)
    assert isinstance(module, ImageClassifier)
    assert datamodule.num_classes == cfg.data.num_classes == {"imagefolder": 7, "cifar100": 100}.get(data, 10)
    # Nothing left unresolved anywhere in the config that a run logs to W&B.
    OmegaConf.to_container(cfg, resolve=True)


def test_command_line_overrides_reach_the_objects(compose_cfg):
    cfg = compose_cfg("model=vit", "data=synthetic", "data.batch_size=32", "model.net.depth=2", "seed=7")
    assert instantiate(cfg.data).batch_size == 32
    module = instantiate(cfg.model)
    assert len(module.net.blocks) == 2
    assert cfg.seed == 7 and cfg.model_name == "vit" and cfg.dataset_name == "synthetic"


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp"])
def test_trainer_configs_compose(compose_cfg, trainer):
    cfg = compose_cfg(f"trainer={trainer}")
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    assert cfg.trainer.default_root_dir == cfg.paths.output_dir


@pytest.mark.parametrize(
    ("logger", "expected"),
    [("wandb", {"wandb", "csv"}), ("csv", {"csv"}), ("tensorboard", {"tensorboard", "csv"}), ("none", set())],
)
def test_logger_choices(compose_cfg, logger, expected):
    cfg = compose_cfg(f"logger={logger}")
    assert set(cfg.logger or {}) == expected


def test_wandb_names_and_offline_without_key(compose_cfg, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_cfg("model=swin", "seed=3")
    wandb_cfg = cfg.logger.wandb
    assert wandb_cfg.offline is True
    assert (wandb_cfg.project, wandb_cfg.job_type, wandb_cfg.name) == ("vitbench", "swin", "swin-s3")
    assert wandb_cfg.save_dir == cfg.paths.output_dir


def test_wandb_goes_online_with_a_key(compose_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert compose_cfg().logger.wandb.offline is False


@pytest.mark.parametrize("debug", ["fast", "overfit"])
def test_debug_presets(compose_cfg, debug):
    cfg = compose_cfg(f"debug={debug}")
    assert cfg.trainer.max_epochs >= 1
    assert "debug" in cfg.tags


def test_keys_that_tooling_relies_on(compose_cfg):
    cfg = compose_cfg()
    sentinel = object()
    expected = {
        "seed": 0,
        "data.source.root": None,
        "data.batch_size": 256,
        "data.train_subset": None,
        "data.num_workers": 0,
        "optimized_metric": "val/acc_best",
    }
    for key, value in expected.items():
        assert OmegaConf.select(cfg, key, default=sentinel) == value, key
    assert OmegaConf.select(cfg, "trainer.max_epochs") >= 1


@pytest.mark.parametrize(("img_size", "patch"), [(28, 7), (32, 8), (64, 8), (224, 7), (30, 6)])
def test_default_vit_patch_divides_every_image_size(compose_cfg, img_size, patch):
    cfg = compose_cfg("data=synthetic", f"data.img_size={img_size}")
    assert cfg.model.net.patch_size == patch


def test_joblib_jobs_share_the_cores_instead_of_oversubscribing(compose_cfg):
    cores = os.cpu_count() or 1
    assert compose_cfg().threads is None  # torch's own default outside joblib
    cfg = compose_cfg("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert cfg.threads == max(1, cores // 2)
    assert compose_cfg("hydra/launcher=joblib").threads == 1  # n_jobs=-1: one job per core


def test_slurm_launcher_and_optuna_search_compose(compose_cfg):
    from hydra.core.hydra_config import HydraConfig

    compose_cfg("hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=8")
    assert "SlurmLauncher" in HydraConfig.get().launcher._target_
    cfg = compose_cfg("hparams_search=optuna")
    assert cfg.optimized_metric == "val/acc_best"
    sweeper = HydraConfig.get().sweeper
    assert sweeper.direction == "maximize" and "model.optimizer.lr" in sweeper.params


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", ["jit", "dit"])
def test_denoisers_instantiate_on_every_dataset_and_denoise_its_shape(
    compose_cfg, model, data, seven_classes
):
    import torch

    from vitbench.denoising import DenoiserModule

    extra = seven_classes if data == "imagefolder" else []
    cfg, _ = compose_with_classes(
        compose_cfg, f"model={model}", f"data={data}", "model.feature_cnn=null", *extra
    )
    module = instantiate(cfg.model)
    assert isinstance(module, DenoiserModule)
    shape = (2, cfg.data.in_chans, cfg.data.img_size, cfg.data.img_size)
    assert module(torch.zeros(shape)).shape == shape
    assert module.net.y_embedder.num_embeddings == cfg.data.num_classes + 1  # and the null class
    OmegaConf.to_container(cfg, resolve=True)


def test_full_size_denoisers_compose_with_the_papers_shapes(compose_cfg):
    jit = compose_cfg("model=jit", "size=full", "data=cifar10").model
    assert (jit.width, jit.depth, jit.num_heads, jit.bottleneck_dim, jit.patch_size) == (768, 12, 12, 128, 2)
    assert (jit.prediction, jit.loss_space, jit.sampling_steps) == ("x", "v", 50)
    dit = compose_cfg(
        "model=dit", "size=full", "data=cifar10", "model.feature_cnn=null", "data.num_classes=10"
    ).model
    assert (dit.width, dit.depth, dit.num_heads, dit.bottleneck_dim) == (384, 12, 6, None)
    assert sum(p.numel() for p in instantiate(dit).net.parameters()) > 30e6  # DiT-S: 33M


@pytest.mark.parametrize("experiment", ["data_efficiency", "data_efficiency_full"])
def test_the_data_efficiency_study_gives_every_size_the_same_steps(experiment):
    """Five or more training-set sizes, evenly spaced in log scale from about 1,000 to the whole
    split, at least two seeds, one step budget for every size, crops on; the full variant is the
    GPU-size models."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vitbench.run.config import CONFIG_DIR, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", "model=vit"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    params = cfg.hydra.sweeper.params
    sizes = [int(s) for s in str(params["data.train_subset"]).split(",")]
    seeds = str(params["seed"]).split(",")
    assert len(sizes) >= 5 and len(seeds) >= 2
    assert sizes[0] == 1000 and sizes[-1] == 60_000 - cfg.data.val_size  # Fashion-MNIST's training split
    ratios = [b / a for a, b in zip(sizes, sizes[1:], strict=False)]
    assert max(ratios) / min(ratios) < 1.1  # evenly spaced in log scale
    assert (
        cfg.trainer.max_steps > 0
        and cfg.trainer.max_epochs == -1
        and cfg.trainer.check_val_every_n_epoch is None
    )
    assert cfg.data.crop_padding > 0
    assert cfg.model.net.embed_dim == (192 if experiment.endswith("full") else 128)


def test_the_pretraining_study_budget_grows_with_the_labels_between_its_floor_and_cap(compose_cfg):
    """10 epochs of 128, at least 1,000 and at most 2,000 steps (vitbench.step_budget), with early stopping."""
    from vitbench.run.config import part_of_budget, step_budget

    budgets = {
        n: compose_cfg("experiment=pretrain_study", f"data.train_subset={n}").trainer.max_steps
        for n in (1000, 7400, 20000, 55000)
    }
    assert budgets == {1000: 1000, 7400: 1000, 20000: 1570, 55000: 2000}
    twice = compose_cfg("experiment=pretrain_study", "data.train_subset=20000", "budget_scale=2")
    assert twice.trainer.max_steps == 3140  # the budget check: the same runs with twice the steps
    # Early stopping only in the last quarter of the budget, where the cosine schedule's rate is low.
    assert twice.trainer.min_steps == 2355
    assert compose_cfg("experiment=pretrain_study", "data.train_subset=1000").trainer.min_steps == 750
    never = compose_cfg("experiment=pretrain_study", "data.train_subset=1000", "early_stopping_from=1")
    assert never.trainer.min_steps == never.trainer.max_steps == 1000
    cfg = compose_cfg("experiment=pretrain_study", "model=vit")
    stop = cfg.callbacks.early_stopping
    assert (stop.monitor, stop.mode, stop.patience, cfg.trainer.val_check_interval) == (
        "val/acc",
        "max",
        5,
        100,
    )
    with pytest.raises(ValueError, match="floor 3 and cap 2 must satisfy 0 < floor <= cap"):
        step_budget(100, 10, 1, 3, 2)
    with pytest.raises(ValueError, match="scale 0 must be > 0"):
        step_budget(100, 10, 1, 2, 3, 0)
    with pytest.raises(ValueError, match=r"fraction 1.5 must lie in \[0, 1\]"):
        part_of_budget(1000, 1.5)
