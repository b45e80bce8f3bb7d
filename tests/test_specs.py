"""Model spec parser: every documented form, and clear errors listing what is accepted."""

import pytest

from interpbench.errors import BadSpecError
from interpbench.specs import parse_spec


@pytest.mark.parametrize("spec, scheme, name, tag, path", [
    ("shapes:dense", "shapes", "dense", None, None),
    ("shapes:sae", "shapes", "sae", None, None),
    ("shapes:sae-resid", "shapes", "sae-resid", None, None),
    ("openclip:ViT-B-32-quickgelu/openai", "openclip", "ViT-B-32-quickgelu", "openai", None),
    ("openclip:ViT-B-32/random", "openclip", "ViT-B-32", "random", None),
    ("openclip:ViT-B-32@/ckpt/model.safetensors", "openclip", "ViT-B-32", None, "/ckpt/model.safetensors"),
    ("openclip:local-dir:/models/x", "openclip", "local-dir", None, "/models/x"),
    ("openclip:./models/x", "openclip", "local-dir", None, "./models/x"),
    ("openclip:hf-hub:org/repo", "openclip", "hf-hub", None, "org/repo"),
    ("sparseclip:/m/sparse", "sparseclip", "", None, "/m/sparse"),
])
def test_accepted_forms(spec, scheme, name, tag, path):
    s = parse_spec(spec)
    assert (s.scheme, s.name, s.tag, s.path) == (scheme, name, tag, path)
    assert str(s) == spec


def test_sae_spec_with_options_and_nested_base():
    s = parse_spec("sae:msae:/x/6144_768_TopKReLU_64_RW_False_False_0.0_cc3m.pth?topk=false&a=1@openclip:ViT-L-14/random")
    assert s.scheme == "sae" and s.name == "msae"
    assert s.path == "/x/6144_768_TopKReLU_64_RW_False_False_0.0_cc3m.pth"
    assert s.options == {"topk": "false", "a": "1"}
    assert (s.base.scheme, s.base.name, s.base.tag) == ("openclip", "ViT-L-14", "random")


def test_hub_location_in_sae_spec():
    s = parse_spec("sae:saelens:org/repo:layer_11@shapes:dense")
    assert s.path == "org/repo:layer_11" and s.base.raw == "shapes:dense"


@pytest.mark.parametrize("spec, fragment", [
    ("", "empty spec"),
    ("nope:x", "unknown scheme 'nope'"),
    ("shapes:huge", "unknown reference model 'huge'"),
    ("openclip:ViT-B-32", "has no tag"),
    ("openclip:ViT-B-32/a/b", "one tag"),
    ("sae:saelens:/x", "base model after '@'"),
    ("sae:saelens:/x@sae:saelens:/y@shapes:dense", "cannot itself be an SAE"),
    ("sae:saelens:/x?bad@shapes:dense", "key=value"),
    ("sae:@shapes:dense", "FORMAT:LOCATION"),
])
def test_bad_specs_name_the_problem_and_list_accepted_forms(spec, fragment):
    with pytest.raises(BadSpecError) as err:
        parse_spec(spec)
    assert fragment in str(err.value)
    assert "accepted model specs" in str(err.value)


def test_unbuilt_spurious_reference_names_the_command(tmp_path, monkeypatch):
    """shapes:spurious parses; loading it before it is trained says how to build it."""
    import interpbench.adapters.openclip_dense as od
    from interpbench.adapters import load_representation
    from interpbench.errors import MissingFileError

    assert parse_spec("shapes:spurious").name == "spurious"
    monkeypatch.setattr(od, "REFERENCE_DIR", tmp_path)
    with pytest.raises(MissingFileError, match="interpbench train clip spurious"):
        load_representation("shapes:spurious")
