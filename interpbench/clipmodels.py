"""open_clip models: the project's JSON configs, the natively sparse head, and model folders.

A model folder is open_clip's own `local-dir:` layout (`open_clip_config.json` +
`open_clip_model.safetensors`), so any folder written here also loads with plain
`open_clip.create_model("local-dir:PATH")`. A natively sparse CLIP adds
`sparse_config.json`; its weights are an ordinary open_clip CLIP whose (widened)
projections are followed by a ReLU at encode time, so the file format is unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import open_clip
import torch
from safetensors.torch import load_file, save_file

from interpbench.ioutils import atomic_write_text, atomic_writer

CONFIG_DIR = Path(__file__).parent / "configs"
OPENCLIP_CONFIG = "open_clip_config.json"
OPENCLIP_WEIGHTS = "open_clip_model.safetensors"
SPARSE_CONFIG = "sparse_config.json"
_registered = False


def register_configs() -> None:
    """Make the project's JSON architectures (configs/*.json) known to open_clip."""
    global _registered
    if not _registered:
        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


@dataclass(frozen=True)
class SparseHeadCfg:
    """The two changes Sparse CLIP makes to CLIP: ReLU after the projection, capped logit scale."""

    relu: bool = True
    logit_scale_cap: float = 50.0  # Sparse CLIP: 50 (Sparse) or 40 (Sparse+); open_clip: 100

    def __post_init__(self):
        if not 1.0 < self.logit_scale_cap <= 1000.0:
            raise ValueError(f"{SPARSE_CONFIG}: logit_scale_cap must be in (1, 1000], got {self.logit_scale_cap}")


class SparseCLIP(torch.nn.Module):
    """An open_clip CLIP with ReLU after both final projections (Sparse CLIP, Sec. 2).

    Exposes the open_clip encode API, so clip-benchmark and the training loop use it as is.
    """

    def __init__(self, clip: torch.nn.Module, cfg: SparseHeadCfg = SparseHeadCfg()):
        super().__init__()
        self.clip, self.cfg = clip, cfg
        self.visual = clip.visual

    @property
    def logit_scale(self):
        return self.clip.logit_scale

    def encode_image(self, images, normalize: bool = False):
        z = self.clip.encode_image(images)
        z = torch.relu(z) if self.cfg.relu else z
        return torch.nn.functional.normalize(z, dim=-1) if normalize else z

    def encode_text(self, tokens, normalize: bool = False):
        z = self.clip.encode_text(tokens)
        z = torch.relu(z) if self.cfg.relu else z
        return torch.nn.functional.normalize(z, dim=-1) if normalize else z

    def clamp_logit_scale(self) -> None:
        with torch.no_grad():
            self.clip.logit_scale.clamp_(0, math.log(self.cfg.logit_scale_cap))

    def forward(self, images, tokens):
        return (self.encode_image(images, normalize=True), self.encode_text(tokens, normalize=True),
                self.clip.logit_scale.exp())


def model_config(name: str) -> dict:
    register_configs()
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise KeyError(f"unknown open_clip architecture {name!r}; see open_clip.list_models()")
    return cfg


def create_random(name: str, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised open_clip model from a built-in or project config (no network)."""
    register_configs()
    torch.manual_seed(seed)
    return open_clip.create_model(name, pretrained=None)


def preprocess_cfg(model: torch.nn.Module) -> dict:
    visual = model.visual
    cfg = dict(getattr(visual, "preprocess_cfg", {}) or {})
    cfg.setdefault("size", list(visual.image_size) if isinstance(visual.image_size, tuple) else visual.image_size)
    cfg.setdefault("mean", list(open_clip.OPENAI_DATASET_MEAN))
    cfg.setdefault("std", list(open_clip.OPENAI_DATASET_STD))
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}


def save_model_folder(folder: Path, model: torch.nn.Module, arch: str, *, sparse: SparseHeadCfg | None = None,
                      dtype: torch.dtype = torch.float16, model_cfg: dict | None = None) -> None:
    """Write an open_clip `local-dir:` folder (weights stored as `dtype` to keep it small).

    `model_cfg` replaces the registered config of `arch` (e.g. a sparse head of another width)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clip = model.clip if isinstance(model, SparseCLIP) else model
    state = {k: v.detach().to(dtype).contiguous() for k, v in clip.state_dict().items()}
    with atomic_writer(folder / OPENCLIP_WEIGHTS, "wb") as tmp:
        save_file(state, tmp, metadata={"architecture": arch})
    config = {"model_cfg": model_cfg or model_config(arch), "preprocess_cfg": preprocess_cfg(clip), "architecture": arch}
    atomic_write_text(folder / OPENCLIP_CONFIG, json.dumps(config, indent=2) + "\n")
    if sparse is not None:
        atomic_write_text(folder / SPARSE_CONFIG, json.dumps(asdict(sparse), indent=2) + "\n")


def load_model_folder(folder: Path) -> tuple[torch.nn.Module, dict]:
    """Load a model folder through open_clip's own `local-dir:` loader (strict, safetensors)."""
    folder = Path(folder)
    from interpbench.errors import MissingFileError  # local: errors imports nothing heavy

    for name in (OPENCLIP_CONFIG, OPENCLIP_WEIGHTS):
        if not (folder / name).is_file():
            raise MissingFileError(folder / name, "an open_clip model folder (local-dir layout)",
                                   "write it with interpbench.clipmodels.save_model_folder or check the path")
    model = open_clip.create_model(f"local-dir:{folder}", pretrained=None)
    model.eval()
    sparse_path = folder / SPARSE_CONFIG
    if sparse_path.is_file():
        from interpbench.validation import load_json_config

        cfg = load_json_config(sparse_path, SparseHeadCfg)
        return SparseCLIP(model, cfg).eval(), json.loads((folder / OPENCLIP_CONFIG).read_text())
    return model, json.loads((folder / OPENCLIP_CONFIG).read_text())


def load_state_into(model: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights into an existing model (strict)."""
    model.load_state_dict(load_file(str(path)), strict=True)
