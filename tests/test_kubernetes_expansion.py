"""Kubelet's `$(VAR)` expansion (kubernetes-contract §1; third_party/forked/golang/expansion/expand.go)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.platforms.kubernetes.expansion import ExpansionError, expand, lookup_in

ENV = {"VAR_A": "A", "VAR_B": "B", "EMPTY": "", "BIG_MONEY": "$", "NESTED": "$(VAR_A)"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$(EMPTY)x", "x"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),  # unresolved stays literal
        ("f000-$$VAR_A", "f000-$VAR_A"),  # $$ is an escaped $
        ("$$(VAR_A)", "$(VAR_A)"),
        ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
        ("$$$$$$$(BIG_MONEY)", "$$$$"),
        ("$(VAR_A", "$(VAR_A"),  # unclosed reference kept
        ("$(", "$("),
        ("x$(", "x$("),
        ("$()", "$()"),
        ("$", "$"),  # trailing operator kept
        ("foo$", "foo$"),
        ("$VAR_A", "$VAR_A"),  # operator before anything else kept with it
        ("$(NESTED)", "$(VAR_A)"),  # values are not expanded again
        ("$(VAR_A)$(VAR_B", "A$(VAR_B"),
        ("$($(VAR_A))", "$($(VAR_A))"),  # the name is `$(VAR_A`, which is not set
        ("é$(VAR_A)é", "éAé"),
    ],
)
def test_kubelet_expansion_rules(text, expected):
    assert expand(text, lookup_in(ENV)) == expected


def test_first_context_wins_like_mapping_func_for():
    lookup = lookup_in({"X": "container"}, {"X": "service", "Y": "service"})
    assert expand("$(X) $(Y)", lookup) == "container service"


def test_dollar_before_a_non_ascii_character_is_refused():
    # Go turns the byte after a lone `$` into a rune: `$é` would become invalid UTF-8.
    with pytest.raises(ExpansionError, match=r"\$\$"):
        expand("price: $é", lookup_in(ENV))


def reference_expand(text: str, env: dict[str, str]) -> str:
    """The documented rules, written independently on characters (valid for ASCII input)."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$" or i == len(text) - 1:
            out.append(text[i])
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(":
            close = text.find(")", i + 2)
            if close == -1:
                out.append("$(")
                i += 2
            else:
                name = text[i + 2 : close]
                out.append(env[name] if name in env else f"$({name})")
                i = close + 1
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out)


@given(
    st.text(alphabet="$()AB_x ", max_size=40),
    st.dictionaries(st.sampled_from(["A", "B", "A_B", ""]), st.text(alphabet="$()x", max_size=4)),
)
def test_expansion_matches_the_reference_model(text, env):
    assert expand(text, lookup_in(env)) == reference_expand(text, env)
