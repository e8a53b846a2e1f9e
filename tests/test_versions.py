"""Dataset references and semantic versions."""

import pytest

from rlif_data.registry.versions import FIRST, Ref, Version, next_version, parse_ref


@pytest.mark.parametrize("text,ref", [
    ("hopper:1.2.0", Ref("hopper", version=Version(1, 2, 0))),
    ("hopper@round-3", Ref("hopper", tag="round-3")),
    ("hopper", Ref("hopper", tag="latest")),
    ("paper-hopper_medium@v2.final", Ref("paper-hopper_medium", tag="v2.final")),
])
def test_parse_ref(text, ref):
    assert parse_ref(text) == ref
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize("text", ["", "Hopper:1.0.0", "hopper:1.0", "hopper:01.0.0", "hopper@",
                                  "hopper:1.0.0@x", "hop per", "hopper@1.2.3", "9lives"])
def test_bad_refs_name_the_forms(text):
    with pytest.raises(ValueError, match="invalid dataset reference"):
        parse_ref(text)


def test_versions_order_numerically_and_bump():
    assert Version.parse("1.10.0") > Version.parse("1.9.9")
    assert Version(1, 2, 3).bump("major") == Version(2, 0, 0)
    assert Version(1, 2, 3).bump("minor") == Version(1, 3, 0)
    assert Version(1, 2, 3).bump("patch") == Version(1, 2, 4)
    with pytest.raises(ValueError, match="unknown version part"):
        Version(1, 0, 0).bump("huge")


def test_next_version():
    assert next_version([]) == FIRST == Version(1, 0, 0)
    assert next_version([Version(1, 0, 0), Version(1, 9, 0), Version(1, 10, 0)]) == Version(1, 11, 0)
    assert next_version([Version(2, 0, 0)], "patch") == Version(2, 0, 1)
