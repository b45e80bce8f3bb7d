"""The curated registry: every entry well-formed, names work as model specs, `interpbench models` lists it."""

from __future__ import annotations

import re

import pytest

from interpbench.adapters.sae_formats import format_module
from interpbench.errors import BadSpecError
from interpbench.registry import known_checkpoints
from interpbench.specs import parse_spec

REQUIRED_SAES = ("prisma-clip-b32-resid11-vanilla", "msae-vit-l14-topk64", "saev-clip-b16-in1k-24k",
                 "gytdau-clip-sae-128", "patchsae-clip-b16", "prisma-clip-b32-resid11-topk64-cls")


def test_entries_are_complete_and_parse():
    known = known_checkpoints()
    for name in REQUIRED_SAES + ("shapes-dense", "shapes-sparse", "shapes-sae"):
        assert name in known, name
    for name, e in known.items():
        assert {"spec", "kind", "note", "verified", "format", "base_model"} <= set(e), name
        assert e["verified"] in ("reference", "public-code", "docs", "no"), name
        if not e["spec"]:
            assert e["verified"] in ("no", "docs") or "not on the hub" in e.get("repo", "")
            continue
        s = parse_spec(name)
        assert s == parse_spec(e["spec"])
        if s.scheme == "sae":
            format_module(s.name)  # a known format
            assert s.base.raw == e["base_model"]
            assert e["repo"] in s.path  # the spec really points at the listed repo


def test_repo_ids_look_like_hub_ids():
    for name, e in known_checkpoints().items():
        if e["kind"] == "sae" and e.get("repo") and not e["repo"].startswith("not on"):
            assert re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.~-]+", e["repo"]), name


def test_unloadable_entry_says_why():
    with pytest.raises(BadSpecError, match="no loadable spec yet.*undocumented"):
        parse_spec("gytdau-clip-sae-128")
    with pytest.raises(BadSpecError, match="Did you mean msae-vit-l14-topk64"):
        parse_spec("msae-vit-l14-topk6")


def test_models_command_lists_everything():
    from typer.testing import CliRunner

    from interpbench.cli.main import app

    out = CliRunner().invoke(app, ["models"], env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    for word in ("sparseclip:", "saelens", "sparsify", "msae", "prisma", "saev", "overcomplete", "interpbench",
                 "shapes:sae", "msae-vit-l14-topk64", "WolodjaZ/MSAE", "osunlp/SAE_CLIP_24K_ViT-B-16_IN1K",
                 "gytdau/clip-sae-128"):
        assert word in out.output, word
