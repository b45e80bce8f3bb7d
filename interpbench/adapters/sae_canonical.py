"""One canonical SAE that every public format maps onto.

    x_n  = norm(x)                                              (input normalisation)
    pre  = (x_n - b_dec * pre_bias) @ W_enc + b_enc
    z    = act(pre)            relu | topk(k) (then relu unless topk_relu=False) | jumprelu(threshold)
    x̂_n = z @ W_dec + b_dec ;  x̂ = norm⁻¹(x̂_n) (+ x @ W_skip.T when there is a skip connection)

`input_norm` picks `norm`:
    mean_scale             (x - input_mean) * input_scale; identity when neither is set (default)
    none                   identity
    layer_norm             per input row: (x - μ) / (σ + 1e-5), σ the unbiased std; undone with
                           the same row's μ, σ (Prisma, SAELens `layer_norm`)
    constant_norm_rescale  per input row: x · √d / ‖x‖; undone with the same row's factor

The per-row modes need the input to undo the normalisation, so `decode(z, x)` takes it.
Format loaders only have to fill these tensors and fields; encoding is the same code for
all. The project's own on-disk format (`cfg.json` + `sae.safetensors`) stores exactly them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from interpbench.errors import (
    ConfigError,
    CorruptFileError,
    MissingFileError,
    NumericalError,
    ShapeMismatchError,
)
from interpbench.ioutils import atomic_write_text, atomic_writer

ACTIVATIONS = ("relu", "topk", "jumprelu")
SITES = ("image_embed", "text_embed", "resid_post", "mlp_out")
LAYER_SITES = ("resid_post", "mlp_out")  # sites inside the vision tower: need a block index
INPUT_NORMS = ("mean_scale", "none", "layer_norm", "constant_norm_rescale")
PER_ROW_NORMS = ("layer_norm", "constant_norm_rescale")
LN_EPS = 1e-5  # Prisma's and SAELens' layer_norm epsilon (added to σ, not to σ²)
TOKENS = ("cls", "patch", "all")
OWN_FORMAT = "interpbench-sae"
OWN_CFG, OWN_WEIGHTS = "cfg.json", "sae.safetensors"


@dataclass(frozen=True)
class HookSite:
    """Where the SAE reads CLIP: a final embedding, the residual stream after block `layer`
    (`resid_post`), or the MLP output of block `layer` (`mlp_out`)."""

    site: str = "image_embed"
    layer: int | None = None
    tokens: str = "cls"

    def __post_init__(self):
        if self.site not in SITES:
            raise ValueError(f"hook site must be one of {SITES}, got {self.site!r}")
        if self.tokens not in TOKENS:
            raise ValueError(f"hook tokens must be one of {TOKENS}, got {self.tokens!r}")
        if self.site in LAYER_SITES and (self.layer is None or self.layer < 0):
            raise ValueError(f"hook site {self.site!r} needs a non-negative block index 'layer'")


@dataclass(frozen=True)
class SAESettings:
    activation: str = "topk"
    k: int | None = None
    pre_bias: bool = True  # subtract b_dec before encoding (sparsify, SAELens apply_b_dec_to_input)
    hook: HookSite = field(default_factory=HookSite)
    base_model: str = ""  # model spec of the CLIP the SAE was trained on
    source_format: str = OWN_FORMAT
    input_norm: str = "mean_scale"  # see the module docstring
    topk_relu: bool = True  # False: keep the k largest pre-activations with their sign (saev, MSAE "TopK")

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.activation == "topk" and (self.k is None or self.k < 1):
            raise ValueError("activation 'topk' needs a positive k")
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")


class CanonicalSAE(torch.nn.Module):
    def __init__(self, W_enc, b_enc, W_dec, b_dec, settings: SAESettings, *,
                 input_mean=None, input_scale: float = 1.0, threshold=None, W_skip=None):
        super().__init__()
        if W_enc.ndim != 2:
            raise ShapeMismatchError(f"SAE tensor 'W_enc' must be 2-D [d_in, n_latents], got {tuple(W_enc.shape)}")
        d, f = W_enc.shape
        _expect("W_dec", W_dec, (f, d))
        _expect("b_enc", b_enc, (f,))
        _expect("b_dec", b_dec, (d,))
        if threshold is not None:
            _expect("threshold", threshold, (f,))
        if input_mean is not None:
            _expect("input_mean", input_mean, (d,))
        if W_skip is not None:
            _expect("W_skip", W_skip, (d, d))
        if settings.input_norm != "mean_scale" and (input_mean is not None or float(input_scale) != 1.0):
            raise ConfigError(f"input_norm {settings.input_norm!r} cannot be combined with input_mean/input_scale; "
                              "use input_norm='mean_scale' for a fixed affine normalisation")
        if not (float(input_scale) > 0 and float(input_scale) < float("inf")):
            raise ConfigError(f"input_scale must be a positive finite number, got {input_scale}")
        if settings.activation == "jumprelu" and threshold is None:
            raise ConfigError("activation 'jumprelu' needs a per-latent threshold tensor")
        if settings.k is not None and settings.k > f:
            raise ConfigError(f"k = {settings.k} exceeds the number of latents {f}")
        _check_finite({"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": b_dec, "threshold": threshold,
                       "input_mean": input_mean, "W_skip": W_skip})
        self.settings = settings
        self.W_enc = torch.nn.Parameter(W_enc.float().contiguous())
        self.b_enc = torch.nn.Parameter(b_enc.float().contiguous())
        self.W_dec = torch.nn.Parameter(W_dec.float().contiguous())
        self.b_dec = torch.nn.Parameter(b_dec.float().contiguous())
        self.register_buffer("input_mean", None if input_mean is None else input_mean.float())
        self.register_buffer("threshold", None if threshold is None else threshold.float())
        self.register_buffer("W_skip", None if W_skip is None else W_skip.float().contiguous())
        self.input_scale = float(input_scale)
        # Where the weights came from and which library rules were applied; loaders fill it.
        self.provenance: dict = {}

    @property
    def d_in(self) -> int:
        return self.W_enc.shape[0]

    @property
    def n_latents(self) -> int:
        return self.W_enc.shape[1]

    def normalise(self, x):
        mode = self.settings.input_norm
        if mode == "layer_norm":
            mu, sigma = _row_stats(x)
            return (x - mu) / (sigma + LN_EPS)
        if mode == "constant_norm_rescale":
            return x * _rescale_coeff(x)
        if self.input_mean is not None:
            x = x - self.input_mean
        return x * self.input_scale

    def denormalise(self, y, x=None):
        """Undo `normalise` on a reconstruction y; the per-row modes need the original input x."""
        mode = self.settings.input_norm
        if mode in PER_ROW_NORMS:
            if x is None:
                raise ValueError(f"this SAE normalises every input row ({mode}); undoing it needs the input: "
                                 "call decode(z, x) or forward(x)")
            if mode == "layer_norm":
                mu, sigma = _row_stats(x)
                return y * sigma + mu
            return y / _rescale_coeff(x)
        y = y / self.input_scale
        return y + self.input_mean if self.input_mean is not None else y

    def pre_activation(self, x):
        x = self.normalise(x)
        if self.settings.pre_bias:
            x = x - self.b_dec
        return x @ self.W_enc + self.b_enc

    def activate(self, pre):
        s = self.settings
        if s.activation == "relu":
            return torch.relu(pre)
        if s.activation == "jumprelu":
            # relu first, as SAELens does: a negative threshold must not let negative values through
            return torch.relu(pre) * (pre > self.threshold)
        vals, idx = pre.topk(s.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, idx, torch.relu(vals) if s.topk_relu else vals)

    def encode(self, x):
        if x.shape[-1] != self.d_in:
            raise ShapeMismatchError(f"SAE expects inputs of width {self.d_in}, got {tuple(x.shape)}")
        return self.activate(self.pre_activation(x))

    def decode(self, z, x=None):
        """Reconstruction from codes z. `x` (the input that gave z) is needed only by the per-row
        input normalisations and by a skip connection; elsewhere it is ignored."""
        y = self.denormalise(z @ self.W_dec + self.b_dec, x)
        if self.W_skip is not None:
            if x is None:
                raise ValueError("this SAE has a skip connection (x @ W_skip.T): call decode(z, x) or forward(x)")
            y = y + x @ self.W_skip.T
        return y

    def forward(self, x):
        z = self.encode(x)
        return z, self.decode(z, x)


def random_unit_rows(n_rows: int, dim: int, seed: int) -> torch.Tensor:
    """[n_rows, dim] seeded Gaussian rows scaled to unit norm: a TopK SAE's initial decoder
    (training/sae.py) and the random-decoder control's decoder (adapters/controls.py)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_rows, dim, generator=g)
    return w / w.norm(dim=1, keepdim=True)


def _row_stats(x):
    mu = x.mean(dim=-1, keepdim=True)
    return mu, (x - mu).std(dim=-1, keepdim=True)


def _rescale_coeff(x):
    return (x.shape[-1] ** 0.5) / x.norm(dim=-1, keepdim=True)


def _check_finite(tensors: dict) -> None:
    """Refuse NaN/inf weights at load: they would otherwise surface minutes into a run as
    non-finite features (load_sae adds the file to the message)."""
    for name, t in tensors.items():
        if t is None or not t.is_floating_point():
            continue
        bad = ~torch.isfinite(t)
        n_bad = int(bad.sum())
        if n_bad:
            first = tuple(int(i) for i in bad.nonzero()[0])
            raise NumericalError(f"SAE tensor {name!r} has {n_bad:,} non-finite values (NaN or inf) of {t.numel():,}, "
                                 f"the first at index {first}; the checkpoint is corrupt or diverged in training: "
                                 "re-download it or use an earlier checkpoint")


def _expect(name, tensor, shape):
    if tuple(tensor.shape) != tuple(shape):
        raise ShapeMismatchError(f"SAE tensor {name!r} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")


def save_own(sae: CanonicalSAE, folder: Path, extra: dict | None = None) -> None:
    """Write the project's own format: cfg.json + sae.safetensors (what the trainer writes)."""
    folder = Path(folder)
    tensors = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec}
    if sae.input_mean is not None:
        tensors["input_mean"] = sae.input_mean
    if sae.threshold is not None:
        tensors["threshold"] = sae.threshold
    if sae.W_skip is not None:
        tensors["W_skip"] = sae.W_skip
    with atomic_writer(folder / OWN_WEIGHTS) as tmp:
        save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, tmp)
    cfg = {"format": OWN_FORMAT, "version": 1, "d_in": sae.d_in, "n_latents": sae.n_latents,
           "input_scale": sae.input_scale, **asdict(sae.settings), **(extra or {})}
    atomic_write_text(folder / OWN_CFG, json.dumps(cfg, indent=2) + "\n")


def load_own(folder: Path) -> CanonicalSAE:
    from interpbench.adapters.safe_load import load_safetensors
    from interpbench.validation import from_dict, read_json

    folder = Path(folder)
    cfg_path, w_path = folder / OWN_CFG, folder / OWN_WEIGHTS
    cfg = read_json(cfg_path)
    if cfg.get("format") != OWN_FORMAT:
        raise ConfigError(f"{cfg_path}: 'format' must be {OWN_FORMAT!r}, got {cfg.get('format')!r}")
    if not w_path.is_file():
        raise MissingFileError(w_path, "the SAE weights (safetensors)", "the folder must hold cfg.json and sae.safetensors")
    hook = from_dict(HookSite, cfg.get("hook", {}), f"{cfg_path} [hook]")
    keys = ("activation", "k", "pre_bias", "base_model", "source_format", "input_norm", "topk_relu")
    settings = from_dict(SAESettings, {**{k: cfg[k] for k in keys if k in cfg}, "hook": hook}, str(cfg_path))
    t = load_safetensors(w_path, required=("W_enc", "b_enc", "W_dec", "b_dec"))
    d, f = cfg.get("d_in"), cfg.get("n_latents")
    if tuple(t["W_enc"].shape) != (d, f):
        raise CorruptFileError(w_path, f"tensor 'W_enc' has shape {tuple(t['W_enc'].shape)}, "
                                       f"but {OWN_CFG} says d_in={d}, n_latents={f}")
    sae = CanonicalSAE(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], settings,
                       input_mean=t.get("input_mean"), input_scale=float(cfg.get("input_scale", 1.0)),
                       threshold=t.get("threshold"), W_skip=t.get("W_skip"))
    sae.provenance = {"format": OWN_FORMAT, "files": [str(cfg_path), str(w_path)]}
    training = cfg.get("training") if isinstance(cfg.get("training"), dict) else {}
    if training.get("recipe"):  # a reseeded SAE (train sae --seeds): results group it with its recipe
        sae.provenance.update(recipe=str(training["recipe"]), train_seed=int(training["config"]["seed"]))
    return sae
