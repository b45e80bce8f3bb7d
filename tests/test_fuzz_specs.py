"""Fuzzing the parsers users type into: model specs, JSON configs, SAE options and hooks.

Property: any input either parses into something consistent with the input, or raises
the documented error class with the offending text in its message. No other exception.
"""

import dataclasses
import json
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from interpbench.adapters.sae_formats._common import opt_bool, opt_float, opt_int, parse_hook
from interpbench.errors import BadSpecError, ConfigError, CorruptFileError, UnsafeFileError
from interpbench.specs import SCHEMES, ModelSpec, parse_spec
from interpbench.validation import contained_path, from_dict, read_json

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Spec-like text: the grammar's own punctuation is over-represented so the parser's branches are hit.
spec_chars = st.sampled_from(list(":/@?&=.~-_ ") + ["shapes", "openclip", "sae", "sparseclip", "local-dir",
                                                     "hf-hub", "random", "dense", "ViT-B-32", "x", "é", "\x00"])
spec_text = st.one_of(st.text(max_size=40), st.lists(spec_chars, max_size=14).map("".join))


@FAST
@given(spec_text)
def test_any_text_parses_or_is_a_bad_spec(text):
    try:
        ms = parse_spec(text)
    except BadSpecError as err:
        assert "accepted model specs" in str(err)
        return
    assert isinstance(ms, ModelSpec) and ms.scheme in SCHEMES
    if ":" in text.strip():  # registry names resolve to another spec; the rest keep their text
        assert ms.raw == text.strip() and ms.scheme == text.strip().partition(":")[0]


name = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_."), min_size=1,
               max_size=12).filter(lambda s: not s.startswith((".", "~")))
path = st.lists(name, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
option = st.tuples(name, st.text(st.characters(blacklist_characters="&=@?", blacklist_categories=("Cs",)),
                                 max_size=8))


@FAST
@given(arch=name.filter(lambda s: "/" not in s and "@" not in s), tag=name, file=path,
       opts=st.lists(option, max_size=3, unique_by=lambda kv: kv[0]), fmt=name)
def test_well_formed_specs_round_trip_their_parts(arch, tag, file, opts, fmt):
    ms = parse_spec(f"openclip:{arch}/{tag}")
    assert (ms.scheme, ms.name, ms.tag) == ("openclip", arch, tag)
    ms = parse_spec(f"openclip:{arch}@{file}")
    assert (ms.name, ms.path) == (arch, file)
    query = "&".join(f"{k}={v}" for k, v in opts)
    sae = parse_spec(f"sae:{fmt}:{file}{'?' + query if query else ''}@openclip:{arch}/{tag}")
    assert (sae.name, sae.path, sae.options) == (fmt, file, dict(opts))
    assert sae.base == parse_spec(f"openclip:{arch}/{tag}")


@FAST
@given(st.text(max_size=20))
def test_sae_on_an_sae_or_without_base_is_refused(loc):
    assume("@" not in loc and "?" not in loc and loc)
    with pytest.raises(BadSpecError):
        parse_spec(f"sae:saelens:{loc}")
    with pytest.raises(BadSpecError):
        parse_spec(f"sae:saelens:{loc}@sae:saelens:{loc}@shapes:dense")


# ---- config loaders ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Cfg:
    steps: int
    lr: float = 0.1
    name: str = "x"
    tags: list = dataclasses.field(default_factory=list)
    k: int | None = None

    def __post_init__(self):
        if self.steps < 1 or not 0 < self.lr <= 1 or (self.k is not None and self.k < 1):
            raise ValueError("need steps >= 1, 0 < lr <= 1, k >= 1 or null")


json_value = st.recursive(st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False)
                          | st.text(max_size=6), lambda v: st.lists(v, max_size=3) | st.dictionaries(
                              st.text(max_size=4), v, max_size=3), max_leaves=8)
config = st.dictionaries(st.sampled_from(["steps", "lr", "name", "tags", "k", "extra", ""]), json_value, max_size=6)


@FAST
@given(config)
def test_from_dict_builds_a_valid_config_or_names_the_problem(data):
    try:
        cfg = from_dict(Cfg, data, "fuzz.json")
    except ConfigError as err:
        assert str(err).startswith("fuzz.json: ")
        return
    assert isinstance(cfg.steps, int) and not isinstance(cfg.steps, bool) and cfg.steps >= 1
    assert isinstance(cfg.lr, (int, float)) and 0 < cfg.lr <= 1
    assert cfg.k is None or (isinstance(cfg.k, int) and cfg.k >= 1)
    assert set(data) <= {f.name for f in dataclasses.fields(Cfg)}


@FAST
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode) | config.map(lambda d: json.dumps(d).encode()))
def test_read_json_returns_an_object_or_a_clear_error(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("json") / "c.json"
    p.write_bytes(blob)
    try:
        data = read_json(p)
    except (CorruptFileError, ConfigError) as err:
        assert str(p) in str(err)
        return
    assert isinstance(data, dict)


@FAST
@given(st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=8), st.none()))
def test_option_coercion_gives_the_type_or_a_config_error(value):
    for fn, typ in ((opt_bool, bool), (opt_int, int), (opt_float, float)):
        try:
            out = fn(value, "opt")
        except ConfigError as err:
            assert "'opt'" in str(err)
            continue
        assert type(out) is typ
        assert typ is not float or math.isfinite(out)


@FAST
@given(st.lists(st.sampled_from(["resid_post", "mlp_out", "image_embed", "text_embed", "cls", "patch", "all",
                                 "3", "-1", "x", "", "1.5"]), min_size=1, max_size=4).map(":".join))
def test_hook_text_parses_or_is_a_config_error(text):
    try:
        hook = parse_hook(text)
    except ConfigError as err:
        assert "bad hook" in str(err)
        return
    assert hook.site in ("resid_post", "mlp_out", "image_embed", "text_embed")


@FAST
@given(st.lists(st.sampled_from(["..", ".", "a", "b", "", "/", "\x00", "c.json"]), min_size=1, max_size=5)
       .map("/".join))
def test_contained_path_never_leaves_its_folder(tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("root")
    try:
        p = contained_path(folder, name, "fuzz")
    except (UnsafeFileError, ConfigError):
        return
    assert p.is_relative_to(folder.resolve())
