"""Snapshot paths and globs behave exactly as docs/SNAPSHOT.md specifies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.paths import (
    GlobIndex,
    PathSyntaxError,
    ancestor_paths,
    category_of,
    compile_glob,
    format_path,
    parse_path,
)

segments = st.lists(
    st.one_of(st.integers(min_value=0, max_value=10_000), st.text(min_size=1, max_size=12)),
    min_size=1,
    max_size=6,
).filter(lambda items: isinstance(items[0], str))


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (["env", "vars", "HOME"], "env.vars.HOME"),
        (["filesystem", "paths", "/opt/ml/model", "mode"], "filesystem.paths['/opt/ml/model'].mode"),
        (["spark", "defaults", "spark.executor.memory"], "spark.defaults['spark.executor.memory']"),
        (["network", "hosts", 0, "ip"], "network.hosts[0].ip"),
        (["filesystem", "paths", "/it's\\here"], "filesystem.paths['/it\\'s\\\\here']"),
        (["env", "vars", "with-dash_1"], "env.vars.with-dash_1"),
    ],
)
def test_paths_are_written_as_the_snapshot_doc_shows(parts, expected):
    assert format_path(parts) == expected
    assert parse_path(expected) == tuple(parts)


@given(segments)
def test_parse_path_inverts_format_path(parts):
    assert parse_path(format_path(parts)) == tuple(parts)


@given(segments)
def test_ancestors_are_the_paths_of_every_prefix(parts):
    path = format_path(parts)
    assert ancestor_paths(path) == [format_path(parts[: n + 1]) for n in range(len(parts))]


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("env.vars.TRAINING_JOB_*", "env.vars.TRAINING_JOB_NAME", True),
        ("env.vars.TRAINING_JOB_*", "env.vars.TRAINING_JOBS", False),
        ("filesystem.paths['/opt/ml*']", "filesystem.paths['/opt/ml/input/config'].mode", True),
        ("filesystem.paths['/opt/ml*']", "filesystem.paths['/opt/mlx']", True),
        ("filesystem.paths['/opt/ml*']", "filesystem.paths['/opt']", False),
        ("env*", "env.vars.HOME", True),  # * spans dots
        ("network.hosts[*].ip", "network.hosts[12].ip", True),  # * spans brackets
        ("env.vars.HOM?", "env.vars.HOME", True),
        ("env.vars.HOM?", "env.vars.HOMES", False),
        ("identity.groups", "identity.groups[3]", True),  # an ancestor matches
        ("identity.group", "identity.groups", False),  # not a segment boundary
        ("*", "process.argv[0]", True),
    ],
)
def test_a_glob_covers_a_path_when_it_matches_the_path_or_an_ancestor(glob, path, matches):
    assert compile_glob(glob).matches_path_or_ancestor(path) is matches


def test_brackets_in_globs_are_literal_not_character_classes():
    glob = compile_glob("network.hosts[1].ip")
    assert glob.matches("network.hosts[1].ip")
    assert not glob.matches("network.hosts1.ip")


@pytest.mark.parametrize(
    ("glob", "problem"),
    [
        ("enviroment.vars.X", "unknown snapshot section 'enviroment'"),
        ("env..HOME", "expected a key at offset 4"),
        ("env.vars[", "unclosed '['"),
        ("env.vars['HOME", "unterminated quoted key"),
        ("env.vars[HOME]", "neither a list index"),
        ("env.vars.0AB", "write it as ['0AB']"),
        ("env.vars.A B", "expected '.' or '['"),
        ("", "empty path"),
    ],
)
def test_a_malformed_glob_says_what_is_wrong(glob, problem):
    with pytest.raises(PathSyntaxError, match=problem.replace("[", r"\[").replace("(", r"\(")):
        compile_glob(glob)


def test_categories_follow_the_first_segment():
    assert category_of("env") == "env"
    assert [category_of(s) for s in ("errors", "truncated", "excluded", "probe", "schema")] == ["probe"] * 5


globs = st.sampled_from(
    [
        "env",
        "env.vars.A*",
        "env.vars.AB",
        "env.vars.A?",
        "*B",
        "filesystem.paths['/a*']",
        "filesystem.paths['/a/b'].mode",
        "network.hosts[*]",
        "network.hosts[1].ip",
    ]
)
paths = st.sampled_from(
    [
        "env",
        "env.vars",
        "env.vars.AB",
        "env.vars.AC",
        "env.vars.B",
        "filesystem.paths['/a/b'].mode",
        "filesystem.paths['/b']",
        "network.hosts[1].ip",
        "network.hosts[0]",
    ]
)


@given(st.lists(globs, min_size=1, max_size=6), paths)
def test_the_glob_index_finds_exactly_the_globs_that_match(patterns, path):
    compiled = [compile_glob(pattern) for pattern in patterns]
    index = GlobIndex((glob, position) for position, glob in enumerate(compiled))
    ancestors = ancestor_paths(path)
    expected = [n for n, glob in enumerate(compiled) if any(glob.matches(a) for a in ancestors)]
    assert index.matching(ancestors) == expected
    parent = ancestors[-2] if len(ancestors) > 1 else ancestors[0]
    matching_path_itself = [n for n, glob in enumerate(compiled) if glob.matches(path)]
    assert index.within(parent).matching([path]) == matching_path_itself
