"""Model spec strings, parsed in one place.

Grammar (see README, "Model specs"):

    shapes:NAME                         a reference model (dense | sparse | sae | sae-resid shipped;
                                        spurious once trained)
    openclip:ARCH/TAG                   open_clip architecture + pretrained tag (downloads when online)
    openclip:ARCH/random                random initialisation (seed 0), no weights
    openclip:ARCH@FILE                  architecture + local checkpoint file (.safetensors/.pt/.bin)
    openclip:local-dir:DIR | openclip:DIR   open_clip's local-dir folder (open_clip_config.json + weights)
    openclip:hf-hub:ORG/REPO            open_clip's hub form (downloads when online)
    sparseclip:DIR                      natively sparse CLIP folder (local-dir layout + sparse_config.json)
    sae:FORMAT:LOCATION@BASE            an SAE checkpoint in a public format on a base model spec;
                                        LOCATION is a local path or ORG/REPO:FILE on the Hugging Face hub;
                                        options may follow LOCATION as ?key=value&key=value
    control:KIND[?seed=N]@SPEC          a random control of the model SPEC (seed 0 by default):
                                        KIND random-codes (alias random) | random-decoder (SAEs)
                                        | untrained (CLIPs); see adapters/controls.py
    NAME                                an entry of the curated registry (`interpbench models`)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from interpbench.errors import BadSpecError

SCHEMES = ("shapes", "openclip", "sparseclip", "sae", "control")
# control kinds (the name results record) and the aliases a spec may use for them
CONTROL_KINDS = ("random-codes", "random-decoder", "untrained")
CONTROL_ALIASES = {"random": "random-codes"}
REFERENCE_MODELS = ("dense", "sparse", "sae", "sae-resid", "spurious")  # spurious: built on demand, not shipped
REFERENCE_SAES = ("sae", "sae-resid")  # the reference models that are SAEs on shapes:dense
REFERENCE_DIR = Path(__file__).resolve().parent / "reference_models"  # where shapes:NAME lives
GRAMMAR = """accepted model specs:
  shapes:dense | shapes:sparse | shapes:sae      shipped reference models
  shapes:sae-resid                               shipped SAE on the residual stream (last block, class token)
  shapes:spurious                                 after `interpbench train clip spurious`
  openclip:ARCH/TAG                              e.g. openclip:ViT-B-32-quickgelu/openai
  openclip:ARCH/random                           random weights (offline tests)
  openclip:ARCH@FILE                             local checkpoint file
  openclip:local-dir:DIR  or  openclip:DIR       open_clip model folder
  openclip:hf-hub:ORG/REPO                       open_clip hub model
  sparseclip:DIR                                 natively sparse CLIP folder
  sae:FORMAT:LOCATION[?opt=val]@BASE             e.g. sae:saelens:./my_sae@openclip:ViT-B-32/random
  control:random-codes[?seed=N]@SPEC             random codes, same width and per-image L0 as SPEC
  control:random-decoder[?seed=N]@SAE_SPEC       untrained SAE of SAE_SPEC's shape on the same base
  control:untrained[?seed=N]@CLIP_SPEC           random-init CLIP of CLIP_SPEC's architecture
  NAME                                           a registry entry (see `interpbench models`)"""


@dataclass(frozen=True)
class ModelSpec:
    scheme: str
    raw: str
    name: str = ""  # reference name, architecture, or SAE format
    tag: str | None = None  # pretrained tag
    path: str | None = None  # file or folder or hub location
    base: ModelSpec | None = None  # SAE base model
    options: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.raw


def _bad(spec: str, why: str) -> BadSpecError:
    return BadSpecError(f"bad model spec {spec!r}: {why}\n{GRAMMAR}")


def _parse_options(text: str, spec: str) -> dict:
    opts = {}
    for part in filter(None, text.split("&")):
        if "=" not in part:
            raise _bad(spec, f"option {part!r} must look like key=value")
        k, v = part.split("=", 1)
        if not k:
            raise _bad(spec, f"option {part!r} has an empty key")
        opts[k] = v
    return opts


def _parse_openclip(rest: str, spec: str) -> ModelSpec:
    if not rest:
        raise _bad(spec, "openclip: needs an architecture or a folder")
    if rest.startswith("local-dir:"):
        folder = rest[len("local-dir:"):]
        if not folder:
            raise _bad(spec, "local-dir: needs a folder")
        return ModelSpec("openclip", spec, name="local-dir", path=folder)
    if rest.startswith("hf-hub:"):
        if "/" not in rest[len("hf-hub:"):]:
            raise _bad(spec, "hf-hub: needs ORG/REPO")
        return ModelSpec("openclip", spec, name="hf-hub", path=rest[len("hf-hub:"):])
    if "@" in rest:
        arch, path = rest.split("@", 1)
        if not arch or not path:
            raise _bad(spec, "ARCH@FILE needs both an architecture and a file")
        return ModelSpec("openclip", spec, name=arch, path=path)
    if "/" in rest and not rest.startswith((".", "/", "~")):
        arch, tag = rest.split("/", 1)
        if not arch or not tag or "/" in tag:
            raise _bad(spec, "ARCH/TAG needs one architecture and one tag")
        return ModelSpec("openclip", spec, name=arch, tag=tag)
    # A bare value is a folder (local-dir); an architecture with no tag is ambiguous.
    if rest.startswith((".", "/", "~")) or "/" in rest:
        return ModelSpec("openclip", spec, name="local-dir", path=rest)
    raise _bad(spec, f"{rest!r} has no tag: write openclip:{rest}/TAG, openclip:{rest}/random "
                     f"or openclip:{rest}@FILE")


def parse_spec(spec: str) -> ModelSpec:
    """Parse a model spec string; raises BadSpecError listing the accepted forms."""
    if not isinstance(spec, str) or not spec.strip():
        raise _bad(str(spec), "empty spec")
    spec = spec.strip()
    scheme, sep, rest = spec.partition(":")
    if not sep:
        from interpbench.registry import known_checkpoints

        known = known_checkpoints()
        if spec in known:
            if not known[spec].get("spec"):
                raise _bad(spec, f"registry entry {spec!r} has no loadable spec yet: {known[spec].get('note', '')}")
            return parse_spec(known[spec]["spec"])  # results record the full spec it stands for
        import difflib

        close = difflib.get_close_matches(spec, list(known), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise _bad(spec, f"no scheme and not a registry name.{hint}")
    if scheme == "shapes":
        if rest not in REFERENCE_MODELS:
            raise _bad(spec, f"unknown reference model {rest!r}; expected one of {REFERENCE_MODELS}")
        return ModelSpec("shapes", spec, name=rest)
    if scheme == "openclip":
        return _parse_openclip(rest, spec)
    if scheme == "sparseclip":
        if not rest:
            raise _bad(spec, "sparseclip: needs a folder")
        return ModelSpec("sparseclip", spec, path=rest)
    if scheme == "sae":
        fmt, sep2, tail = rest.partition(":")
        if not sep2 or not fmt:
            raise _bad(spec, "sae: needs FORMAT:LOCATION@BASE")
        location, at, base = tail.partition("@")
        if not at or not base:
            raise _bad(spec, "an SAE spec needs its base model after '@' (e.g. @shapes:dense)")
        location, _, opts = location.partition("?")
        if not location:
            raise _bad(spec, "sae: needs a LOCATION (path or ORG/REPO:FILE)")
        base_spec = parse_spec(base)
        if base_spec.scheme == "sae":
            raise _bad(spec, "an SAE's base model cannot itself be an SAE")
        if base_spec.scheme == "control":
            raise _bad(spec, "an SAE's base model cannot be a control; control the SAE instead "
                             "(control:random-decoder@sae:...)")
        return ModelSpec("sae", spec, name=fmt, path=location, base=base_spec,
                         options=_parse_options(opts, spec))
    if scheme == "control":
        return _parse_control(rest, spec)
    raise _bad(spec, f"unknown scheme {scheme!r}; expected one of {SCHEMES}")


def is_sae_spec(ms: ModelSpec) -> bool:
    return ms.scheme == "sae" or (ms.scheme == "shapes" and ms.name in REFERENCE_SAES)


def _parse_control(rest: str, spec: str) -> ModelSpec:
    """control:KIND[?seed=N]@SPEC. The target is everything after the first '@' (KIND and
    its options never hold one, the target may: sae:...@BASE, openclip:ARCH@FILE)."""
    head, at, target = rest.partition("@")
    if not at or not target:
        raise _bad(spec, "a control needs the model it controls after '@' (e.g. control:random-codes@shapes:sae)")
    kind, _, opts = head.partition("?")
    kind = CONTROL_ALIASES.get(kind, kind)
    if kind not in CONTROL_KINDS:
        raise _bad(spec, f"unknown control kind {kind!r}; expected one of {CONTROL_KINDS}")
    options = _parse_options(opts, spec)
    if set(options) - {"seed"}:
        raise _bad(spec, f"control options {sorted(set(options) - {'seed'})} unknown; the only option is seed=N")
    seed = options.get("seed", "0")
    if not (seed.isascii() and seed.isdigit()):
        raise _bad(spec, f"control seed must be a non-negative integer, got {seed!r}")
    base = parse_spec(target)
    if base.scheme == "control":
        raise _bad(spec, "a control's target cannot itself be a control")
    if kind == "random-decoder" and not is_sae_spec(base):
        raise _bad(spec, f"random-decoder controls an SAE (sae:..., shapes:sae or shapes:sae-resid); {target!r} is not one. "
                         "Use control:random-codes or control:untrained for a CLIP")
    if kind == "untrained" and is_sae_spec(base):
        raise _bad(spec, f"untrained controls a CLIP (openclip:, sparseclip:, shapes:dense|sparse); {target!r} is "
                         "an SAE: use control:random-decoder for it")
    return ModelSpec("control", spec, name=kind, base=base, options={"seed": int(seed)})


def matching_controls(spec: str, is_sae: bool) -> list[str]:
    """The controls a verdict on `spec` needs (docs/metrics.md#validity): random codes for
    every model, then a random-decoder SAE for an SAE or an untrained CLIP for a CLIP.
    A control has none (it is the comparison, not a contestant)."""
    if spec.startswith("control:"):
        return []
    return [f"control:random-codes@{spec}", f"control:{'random-decoder' if is_sae else 'untrained'}@{spec}"]


def with_controls(specs: list[str]) -> list[str]:
    """`evaluate --controls`: each spec followed by its matching controls, without repeats."""
    out: list[str] = []
    for spec in specs:
        extra = [] if spec.startswith("control:") else matching_controls(spec, is_sae_spec(parse_spec(spec)))
        out += [s for s in (spec, *extra) if s not in out]
    return out
