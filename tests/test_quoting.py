"""Quoting: every value arrives as exactly one argument, in bash and in sbatch's parser."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpctriton.errors import RenderError
from hpctriton.shell import quoting

HOSTILE = [
    "plain", "a b", "it's", '"double"', "$(touch CANARY)", "`touch CANARY`", "; touch CANARY;",
    "new\nline", "$HOME", "back\\slash", "*", "~", "-dash", "", "tab\there", "#hash", "ünï",
]
text_without_nul = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=40)


def bash_echo(args: list[str]) -> list[str]:
    """What bash hands a program for a command line built by quoting.join."""
    script = "printf '%s\\0' " + quoting.join(args)
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout
    return out.decode("utf-8", "surrogateescape").split("\0")[:-1]


def sbatch_get_argument(line: str) -> str:
    """A model of ``_get_argument`` in Slurm's src/sbatch/opt.c, as sbatch 22.05 was seen
    to behave here: an unquoted space ends the word (even after a backslash), a
    backslash escapes the next character (inside quotes too), an unquoted ``#`` starts a
    comment. The real sbatch is exercised end to end in the Slurm tests (hostile job
    names); this model lets hypothesis try thousands of values quickly."""
    out, quote, escape = [], "", False
    for ch in line:
        if not quote and ch.isspace():
            break
        if escape:
            escape = False
        elif ch == "\\":
            escape = True
            continue
        elif quote:
            if ch == quote:
                quote = ""
                continue
        elif ch in "\"'":
            quote = ch
            continue
        elif ch == "#":
            break
        out.append(ch)
    return "".join(out)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_arrive_as_one_identical_argument(value: str) -> None:
    assert bash_echo([value, "next"]) == [value, "next"]


@settings(max_examples=150, deadline=None)
@given(st.lists(text_without_nul, min_size=1, max_size=4))
def test_any_text_round_trips_through_bash(values: list[str]) -> None:
    values = [v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for v in values]
    assert bash_echo(values) == values


def test_raw_fragments_are_left_as_written() -> None:
    assert quoting.join(["a b", quoting.Raw('"$x"')]) == "'a b' \"$x\""


def test_nul_is_refused() -> None:
    with pytest.raises(RenderError, match="NUL"):
        quoting.q("a\x00b")


@pytest.mark.parametrize("value", [v for v in HOSTILE if "\n" not in v])
def test_sbatch_quote_survives_sbatch_parsing(value: str) -> None:
    assert sbatch_get_argument("--job-name=" + quoting.sbatch_quote(value)) == "--job-name=" + value


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\x00\n\r"), max_size=40))
def test_sbatch_quote_round_trips_any_single_line(value: str) -> None:
    assert sbatch_get_argument(quoting.sbatch_quote(value)) == value


def test_sbatch_quote_refuses_newlines() -> None:
    with pytest.raises(RenderError, match="newline"):
        quoting.sbatch_quote("a\nb")


def test_env_names_are_checked() -> None:
    assert quoting.env_name("OK_1") == "OK_1"
    with pytest.raises(RenderError):
        quoting.env_name("1BAD")
