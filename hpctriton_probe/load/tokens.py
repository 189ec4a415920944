"""Streamed answers of decoupled models (LLM serving): prompts, which output holds the
tokens and how they are counted, and the figures of one streamed request.

A decoupled model answers one request with any number of responses, then a final
flag. Per request the load check records the time to the first response that carries
an output (TTFT), the gaps between consecutive such responses (ITL), the time to the
final flag (end to end) and the output tokens. How tokens are counted is the
``token_count`` rule, stated in the results:

* ``elements`` (default): each response adds the number of elements of its token
  output (``token_output``, default the model's only output): an LLM backend that
  sends one token id, or one piece of text, per response adds 1;
* ``responses``: each response that carries an output adds 1;
* ``words``: the BYTES token output's text split on white space (for models that
  send several words per response).

The empty final response (Triton sends it when asked, so that the client knows a
request has ended: ``triton_enable_empty_final_response``) carries no output: it ends
the request and adds neither a token nor a gap.

Prompts come from a JSONL file, one ``{"text": ...}`` per line as genai-perf takes
them, and go into the model's BYTES input (``prompt_input``, default its only BYTES
input).

Standard library only (worker processes import it); Python 3.7 compatible.
"""

import json
from typing import Any, Dict, List, Optional, Sequence

from hpctriton_probe.load.inputs import InputError

#: ``token_count`` rules, in the order of their codes on the wire parser.
RULES = ("responses", "elements", "words")
#: At most this many prompts are read (each becomes a pre-built request).
MAX_PROMPTS = 10000


def rule_code(rule: str) -> int:
    """The rule as the stream parser takes it (``grpc_h2.decoupled_reply``)."""
    try:
        return RULES.index(rule)
    except ValueError:
        raise InputError("token_count {!r} is not one of {}".format(
            rule, ", ".join(RULES))) from None


def read_prompts(path: str) -> List[str]:
    """The texts of a JSONL prompt file: one JSON object with a ``text`` string per
    line (blank lines skipped), at most :data:`MAX_PROMPTS`.

    Example::

        {"text": "What is the capital of France?"}
        {"text": "Write a haiku about GPUs."}
    """
    texts: List[str] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except ValueError as exc:
                    raise InputError(f"{path}, line {number}: not JSON: {exc}") from None
                if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
                    raise InputError(f"{path}, line {number}: expected {{\"text\": \"...\"}} "
                                     "(one prompt per line, as genai-perf takes them)")
                texts.append(doc["text"])
                if len(texts) >= MAX_PROMPTS:
                    break
    except OSError as exc:
        raise InputError(f"cannot read prompts file {path}: {exc}") from None
    if not texts:
        raise InputError(f"{path}: no prompts (expected one {{\"text\": ...}} per line)")
    return texts


def prompt_input(metadata: Dict[str, Any], wanted: Optional[str]) -> str:
    """The input prompts go into: ``wanted``, else the model's only BYTES input."""
    inputs = metadata["inputs"]
    if wanted is not None:
        found = [io for io in inputs if io["name"] == wanted]
        if not found:
            raise InputError("prompt_input {!r} is not an input of the model (inputs: {})"
                             .format(wanted, ", ".join(io["name"] for io in inputs)))
        if found[0]["datatype"] != "BYTES":
            raise InputError(f"prompt_input {wanted!r} is {found[0]['datatype']}; prompts "
                             "are text and go into a BYTES input")
        return wanted
    texts = [io["name"] for io in inputs if io["datatype"] == "BYTES"]
    if len(texts) != 1:
        raise InputError("prompts need one BYTES input to go into; the model has {}: give "
                         "prompt_input".format(", ".join(texts) if texts else "none"))
    return texts[0]


def token_output(metadata: Dict[str, Any], wanted: Optional[str], rule: str) -> Optional[str]:
    """The output whose elements are tokens (None for the ``responses`` rule without
    ``wanted``): ``wanted``, else the model's only output. ``words`` needs BYTES."""
    outputs = metadata["outputs"]
    names = [io["name"] for io in outputs]
    if wanted is not None:
        if wanted not in names:
            raise InputError("token_output {!r} is not an output of the model (outputs: {})"
                             .format(wanted, ", ".join(names)))
        name: Optional[str] = wanted
    elif rule == "responses":
        return None
    elif len(names) == 1:
        name = names[0]
    else:
        raise InputError("the model has outputs {}: give token_output (the one that "
                         "holds the tokens), or token_count: responses".format(
                             ", ".join(names) or "none"))
    datatype = next(io["datatype"] for io in outputs if io["name"] == name)
    if rule == "words" and datatype != "BYTES":
        raise InputError(f"token_count: words splits text, but token_output {name!r} is "
                         f"{datatype}; use elements")
    return name


def optional_inputs(raw_config: Dict[str, Any]) -> List[str]:
    """Names of the inputs a model's config marks ``optional`` (JSON config, as the
    HTTP client or the gRPC client with ``as_json`` returns it)."""
    config = raw_config.get("config", raw_config) if isinstance(raw_config, dict) else {}
    return [str(io.get("name")) for io in config.get("input") or []
            if isinstance(io, dict) and io.get("optional")]


def json_fields(arrays: Sequence[tuple]) -> Optional[Dict[str, Any]]:
    """The request as Triton's generate extension takes it (one JSON field per input),
    or None when an input does not fit one field (more than one element)."""
    out: Dict[str, Any] = {}
    for name, datatype, array in arrays:
        if getattr(array, "size", 0) != 1:
            return None
        value = array.reshape(-1)[0]
        if datatype == "BYTES":
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            out[name] = str(value)
        elif datatype == "BOOL":
            out[name] = bool(value)
        elif datatype in ("FP16", "FP32", "FP64", "BF16"):
            out[name] = float(value)
        else:
            out[name] = int(value)
    return out


def why_not_json(arrays: Sequence[tuple]) -> str:
    """Why :func:`json_fields` refused ``arrays`` (for the skip message)."""
    for name, datatype, array in arrays:
        if getattr(array, "size", 0) != 1:
            return (f"input {name} has {int(getattr(array, 'size', 0))} elements; Triton's "
                    "generate extension takes one value per input (a JSON field)")
        if datatype == "BYTES":
            return f"input {name} holds bytes that are not UTF-8 text"
    return "the inputs do not fit JSON fields"


def count_words(text: Any) -> int:
    """Words of a piece of text (bytes or str) split on white space."""
    return len(text.split())


class StreamFigures:
    """One streamed request as the client saw it (seconds on ``time.perf_counter``):
    ``first`` and ``end`` (None until known), the gaps between its responses with
    outputs, its tokens and responses."""

    __slots__ = ("first", "last", "end", "gaps", "tokens", "responses")

    def __init__(self) -> None:
        self.first: Optional[float] = None
        self.last = 0.0
        self.end: Optional[float] = None
        self.gaps: List[float] = []
        self.tokens = 0
        self.responses = 0

    def response(self, t: float, tokens: int) -> None:
        """A response with outputs arrived at ``t`` with ``tokens`` tokens."""
        if self.first is None:
            self.first = t
        else:
            self.gaps.append(t - self.last)
        self.last = t
        self.tokens += tokens
        self.responses += 1

    def summary(self, t0: float) -> Dict[str, Any]:
        """The infer check's figures: ``responses``, ``ttft_ms``, ``itl_ms`` (every gap),
        ``e2e_ms`` and ``tokens`` (times from ``t0``, the send)."""
        return {"responses": self.responses,
                "ttft_ms": None if self.first is None else round((self.first - t0) * 1e3, 3),
                "itl_ms": [round(g * 1e3, 3) for g in self.gaps],
                "e2e_ms": None if self.end is None else round((self.end - t0) * 1e3, 3),
                "tokens": self.tokens}
