"""The infer check on a decoupled model: one request, every response until the final
one, over gRPC ``ModelStreamInfer`` and over HTTP ``generate_stream``.

A decoupled model (LLM serving: vLLM, TensorRT-LLM, Python models) answers a request
with any number of responses, then a final flag. ``infer`` used to skip such models and
the verdict stayed OK although nothing was inferred; now:

* **gRPC**: tritonclient's stream (``start_stream``, ``async_stream_infer``), its
  responses read until the one whose ``triton_final_response`` parameter is true. So
  that the end is known whatever the model sends last, the request asks for the empty
  final response: with ``enable_empty_final_response=True`` where the installed
  tritonclient has that argument (2.51 and the newest do); where it lacks it (2.18,
  2.30) the probe puts the request parameter ``triton_enable_empty_final_response``
  into the request tritonclient builds (detected in the installed code, never from a
  version number; ``details.final`` says which, ``run.workarounds`` too). A client where
  neither works reads ``triton_final_response`` alone: a model that sends its final
  flag without a response then ends by the timeout, and the message says so.
* **HTTP**: Triton's generate extension, ``POST /v2/models/<model>/generate_stream``,
  one JSON field per input; its server-sent events are read until the stream ends. It
  applies where every input is one value (a string, a number, a bool); elsewhere the
  HTTP entry is ``skip`` with the reason, unless gRPC does not infer the model in the
  same check: then it is ``error`` (a decoupled model never passes uninferred).

The entry passes when at least one response with outputs arrived, every response's
outputs have the declared datatypes and fitting shapes (gRPC), and the expected
outputs (when given) match: entry *i* of the expected file's ``validation_data``
(or ``data``) is compared with response *i*, and their numbers must agree. Details:
``responses``, ``ttft_ms``, ``itl_ms`` (every gap), ``e2e_ms``, ``final``,
``endpoint`` and the outputs' previews (``schema.StreamInferDetails``).

Optional inputs (the model's config says ``optional: true``) are left out of the
synthesized request unless the input-data file gives them: a made-up token limit of
-3 would make an LLM answer nothing.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import time
import urllib.parse
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from hpctriton_probe.load import inputs as inp
from hpctriton_probe.load import tokens as tok
from hpctriton_probe.net import features
from hpctriton_probe.net.calls import CallFailure

if TYPE_CHECKING:
    from hpctriton_probe.checks.base import CheckContext
    from hpctriton_probe.schema import ResultEntry

FINAL = "triton_final_response"
#: How the end of a gRPC stream was known (``details.final``).
BY_ARGUMENT = "enable_empty_final_response"
BY_PARAMETER = "request parameter triton_enable_empty_final_response"
BY_RESPONSE = "triton_final_response of the model's last response"
BY_END = "end of the event stream"


class StreamFailed(Exception):
    """The stream ended badly; ``failure_kind`` is read by ``calls.classify``."""

    def __init__(self, kind: str, message: str, figures: tok.StreamFigures) -> None:
        super().__init__(message)
        self.failure_kind = kind
        self.figures = figures


class Streamed:
    """One request's responses: arrival times in ``figures``, outputs per response."""

    def __init__(self, t0: float, final: str) -> None:
        self.t0 = t0
        self.final = final
        self.figures = tok.StreamFigures()
        #: Per response with outputs: ``{name: (datatype or None, numpy array)}``.
        self.outputs: List[Dict[str, Tuple[Optional[str], Any]]] = []


# ----------------------------------------------------------------------------- gRPC


def _send(client: Any, model: str, inputs: List[Any], outputs: List[Any],
          request_id: str) -> str:
    """Send the request on the client's stream, asking for the empty final response
    the way this tritonclient allows; returns how (``BY_*``)."""
    if features.accepts(client.async_stream_infer, "enable_empty_final_response"):
        client.async_stream_infer(model, inputs, outputs=outputs, request_id=request_id,
                                  enable_empty_final_response=True)
        return BY_ARGUMENT
    stream: Any = getattr(client, "_stream", None)
    enqueue = getattr(stream, "_enqueue_request", None)
    if enqueue is None:
        client.async_stream_infer(model, inputs, outputs=outputs, request_id=request_id)
        return BY_RESPONSE

    def with_flag(request: Any) -> None:
        request.parameters["triton_enable_empty_final_response"].bool_param = True
        enqueue(request)

    # tritonclient before 2.31 builds the request inside async_stream_infer and has no
    # argument for the flag: add it on the way to the stream's queue, for this call only
    stream._enqueue_request = with_flag
    try:
        client.async_stream_infer(model, inputs, outputs=outputs, request_id=request_id)
    finally:
        del stream._enqueue_request
    features.note_workaround(f"{features.client_version()} has no "
                             "enable_empty_final_response: the probe sets the request "
                             "parameter triton_enable_empty_final_response itself on "
                             "decoupled models' streams")
    return BY_PARAMETER


def grpc_stream(ctx: CheckContext, model: str, arrays: List[tuple],
                output_names: List[str], timeout_s: float) -> Streamed:
    """One request on a ``ModelStreamInfer`` stream of a client of its own, read until
    the final response (raises ``StreamFailed`` or what tritonclient raises)."""
    from hpctriton_probe.net.clients import import_client

    module = import_client("grpc")
    client = module.InferenceServerClient(ctx.server.url("grpc"),
                                          **ctx.clients._grpc_kwargs())
    answers: queue.Queue = queue.Queue()

    def callback(result: Any = None, error: Any = None) -> None:
        # tritonclient calls it with keywords (result=, error=), from its own thread
        answers.put((time.perf_counter(), result, error))

    try:
        infer_inputs = []
        for name, datatype, array in arrays:
            item = module.InferInput(name, list(array.shape), datatype)
            item.set_data_from_numpy(array)
            infer_inputs.append(item)
        requested = [module.InferRequestedOutput(n) for n in output_names]
        client.start_stream(callback=callback, stream_timeout=timeout_s + 1.0,
                            headers=ctx.clients.headers_for("grpc"))
        t0 = time.perf_counter()
        done = Streamed(t0, _send(client, model, infer_inputs, requested, "hpctriton-1"))
        deadline = t0 + timeout_s
        while True:
            try:
                t, result, error = answers.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                n = done.figures.responses
                hint = ("; this tritonclient cannot ask for the empty final response, so "
                        "a model that ends without a last response is never seen to end"
                        if done.final == BY_RESPONSE else "")
                raise StreamFailed("timeout", f"no final response within {timeout_s:g} s "
                                   f"({n} response{'s' if n != 1 else ''} before){hint}",
                                   done.figures) from None
            if error is not None:
                kind, message, _ = _classify(error)
                raise StreamFailed(kind, f"{message} (after {done.figures.responses} "
                                   "responses)", done.figures)
            response = result.get_response()
            outs: Dict[str, Tuple[Optional[str], Any]] = {}
            for tensor in response.outputs:
                outs[tensor.name] = (tensor.datatype, result.as_numpy(tensor.name))
            if outs:
                done.outputs.append(outs)
                done.figures.response(t, sum(int(a.size) for _, a in outs.values()
                                             if a is not None))
            parameters = response.parameters
            if FINAL in parameters and parameters[FINAL].bool_param:
                done.figures.end = t
                return done
    finally:
        for step in (client.stop_stream, client.close):
            with contextlib.suppress(Exception):  # closing must never hide the result
                step()


def _classify(error: Any) -> Tuple[str, str, Optional[str]]:
    from hpctriton_probe.net.calls import classify

    return classify(error)


# ----------------------------------------------------------------------------- HTTP


def http_generate_stream(ctx: CheckContext, model: str, fields: Dict[str, Any],
                         timeout_s: float) -> Streamed:
    """``POST /v2/models/<model>/generate_stream`` with ``fields``; every server-sent
    event until the stream ends (raises ``StreamFailed`` or what http.client raises)."""
    from hpctriton_probe.load.generator import http_ssl_context

    host, _, port = str(ctx.server.url("http")).rpartition(":")
    host = host.strip("[]")
    clients = ctx.clients
    conn: http.client.HTTPConnection
    if ctx.server.tls is not None:
        clients.check_tls_files()
        context = http_ssl_context(clients.ca, clients.cert, clients.key,
                                   ctx.server.tls.verify)
        conn = http.client.HTTPSConnection(host, int(port), timeout=timeout_s,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    headers.update(clients.headers_for("http") or {})
    path = "/v2/models/{}/generate_stream".format(urllib.parse.quote(model, safe=""))
    body = json.dumps(fields).encode("utf-8")
    try:
        t0 = time.perf_counter()
        conn.request("POST", path, body, headers)
        reply = conn.getresponse()
        done = Streamed(t0, BY_END)
        kind = (reply.getheader("Content-Type") or "").lower()
        if reply.status != 200 or "event-stream" not in kind:
            text = reply.read().decode("utf-8", "replace")
            raise StreamFailed("server", f"HTTP {reply.status}: {_error_text(text)}",
                               done.figures)
        deadline = t0 + timeout_s
        while True:
            line = reply.readline()
            t = time.perf_counter()
            if not line:
                done.figures.end = t
                return done
            if t > deadline:
                raise StreamFailed("timeout", f"the event stream did not end within "
                                   f"{timeout_s:g} s", done.figures)
            if not line.startswith(b"data:"):
                continue  # blank lines between events, comments, event names
            try:
                event = json.loads(line[5:].decode("utf-8"))
            except ValueError as exc:
                raise StreamFailed("server", f"an event is not JSON: {exc}",
                                   done.figures) from None
            if isinstance(event, dict) and "error" in event:
                raise StreamFailed("server", "{} (after {} responses)".format(
                    event["error"], done.figures.responses), done.figures)
            if not isinstance(event, dict):
                raise StreamFailed("server", f"an event is not a JSON object: {event!r}",
                                   done.figures)
            outs: Dict[str, Tuple[Optional[str], Any]] = {
                k: (None, v) for k, v in event.items()
                if k not in ("model_name", "model_version", "id")}
            if outs:
                done.outputs.append(outs)
                done.figures.response(t, len(outs))
    finally:
        conn.close()


def _error_text(text: str) -> str:
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and "error" in doc:
            return str(doc["error"])
    except ValueError:
        pass
    return text.strip().splitlines()[0][:300] if text.strip() else "no message"


# ---------------------------------------------------------------------------- checking


def _as_array(value: Any, io: Dict[str, Any], mbs: int, where: str) -> Any:
    """A JSON value of a generate_stream event as the output's tensor (one batch
    element; batched models get a batch dimension of 1)."""
    dims = inp.model_dims(io, mbs)
    array = inp.tensor_from_json(value if isinstance(value, list) else [value],
                                 io["datatype"], [-1] if dims == [1] else dims, where)
    return array.reshape([1] + list(array.shape)) if mbs > 0 else array


def _expected(ctx: CheckContext, model: str, meta: Dict[str, Any], mbs: int,
              data: Optional[dict], data_path: str) -> Tuple[List[Dict[str, Any]], str]:
    """Expected outputs per response: entry *i* for response *i* (empty: none given)."""
    opts = ctx.options
    path = inp.resolve_file_option(opts.expected_outputs, model, ctx.base_dir)
    if path:
        doc = inp.load_data_file(path)
        entries = doc.get("validation_data") or doc.get("data") or []
        where = path
    elif data and data.get("validation_data"):
        entries, where = data["validation_data"], data_path + " validation_data"
    else:
        return [], ""
    outputs = {o["name"]: o for o in meta["outputs"]}
    out = []
    for i, entry in enumerate(entries):
        arrays = {}
        for name in entry:
            if name not in outputs:
                raise inp.InputError("{}: {!r} is not an output of the model (outputs: {})"
                                     .format(where, name, ", ".join(sorted(outputs))))
            io = outputs[name]
            arrays[name] = inp.batch_from_entries([entry], name, io["datatype"],
                                                  inp.model_dims(io, mbs), mbs, 1,
                                                  f"{where}[{i}]")
        out.append(arrays)
    return out, where


def _judge(done: Streamed, meta: Dict[str, Any], mbs: int, protocol: str,
           expected: List[Dict[str, Any]], details: Dict[str, Any]) -> List[str]:
    """Problems with the responses (empty: they are right)."""
    problems: List[str] = []
    declared = {o["name"]: o for o in meta["outputs"]}
    batch = 1 if mbs > 0 else None
    if not done.outputs:
        problems.append("no response with outputs arrived before the final response: "
                        "nothing was inferred")
    arrays: List[Dict[str, Any]] = []
    for i, outs in enumerate(done.outputs):
        mine = {}
        for name, (datatype, value) in outs.items():
            io = declared.get(name)
            if io is None:
                if protocol == "grpc":
                    problems.append(f"response {i}: output {name} is not declared by the "
                                    "model")
                continue
            if protocol == "http":
                try:
                    value = _as_array(value, io, mbs, f"response {i}: {name}")
                except inp.InputError as exc:
                    problems.append(str(exc))
                    continue
            elif datatype != io["datatype"]:
                problems.append(f"response {i}: output {name} is {datatype}, the model "
                                f"declares {io['datatype']}")
            elif value is not None and not inp.shape_fits(io["shape"], list(value.shape),
                                                       batch):
                problems.append(f"response {i}: output {name} has shape "
                                f"{list(value.shape)}, the model declares {io['shape']}")
            mine[name] = value
        arrays.append(mine)
    if len(problems) > 5:
        problems[5:] = [f"and {len(problems) - 5} more"]
    names = sorted({n for outs in arrays for n in outs})
    details["outputs"] = [{"name": n, "datatype": declared[n]["datatype"],
                           "preview": _preview([outs.get(n) for outs in arrays])}
                          for n in names]
    if expected:
        compared = []
        if len(expected) != len(arrays):
            problems.append(f"{len(arrays)} responses with outputs, {len(expected)} "
                            "expected (one validation entry per response)")
        for i, (want, got) in enumerate(zip(expected, arrays)):  # noqa: B905 - compared
            for name, array in sorted(want.items()):
                cmp = inp.compare(name, declared[name]["datatype"], array, got.get(name))
                cmp["response"] = i
                if cmp["status"] != "match":
                    problems.append(f"response {i}: {cmp['message']}")
                compared.append(cmp)
        details["compared"] = compared[:50]
    return problems


def _preview(arrays: List[Any], limit: int = 16) -> List[Any]:
    """The first values of the responses, in order (text pieces of an LLM's answer)."""
    out: List[Any] = []
    for array in arrays:
        if array is None:
            continue
        out.extend(inp.preview(array, limit - len(out)))
        if len(out) >= limit:
            break
    return out


# ------------------------------------------------------------------------------ entry


def infer_decoupled(ctx: CheckContext, protocol: str, model: str, meta: Dict[str, Any],
                    config: Dict[str, Any], started: float) -> ResultEntry:
    """The infer check's entry for decoupled ``model`` over ``protocol``."""
    opts = ctx.options
    mbs = config["max_batch_size"]
    details: Dict[str, Any] = {"batch_size": 1 if mbs > 0 else None,
                               "max_batch_size": mbs, "decoupled": True}
    unsupported = {io["name"]: features.datatype_problem(io["datatype"])
                   for io in meta["inputs"] + meta["outputs"]}
    unsupported = {k: v for k, v in unsupported.items() if v}
    if unsupported:
        details["unsupported_tensors"] = unsupported
        return ctx.entry(protocol, model, "skip", "{} (tensors {}): upgrade tritonclient to "
                         "check this model's inference".format(
                             "; ".join(sorted(set(str(v) for v in unsupported.values()))),
                             ", ".join(sorted(unsupported))), details, started)
    try:
        raw = ctx.call(protocol, "get_model_config", model, what="model config",
                       **({"as_json": True} if protocol == "grpc" else {}))
        optional = tok.optional_inputs(raw)
        data_path = inp.resolve_file_option(opts.input_data, model, ctx.base_dir)
        data = inp.load_data_file(data_path) if data_path else None
        prep = inp.prepare(meta, mbs, batch_size=1, shapes=opts.shapes, data=data,
                           data_path=data_path or "", optional=optional)
        expected, expected_source = _expected(ctx, model, meta, mbs, data, data_path or "")
    except CallFailure as failure:
        return ctx.failure_entry(protocol, model, failure, started, details)
    except inp.InputError as exc:
        return ctx.entry(protocol, model, "error", str(exc), details, started)
    details["inputs"] = prep.describe()
    details["input_source"] = data_path or "synthesized"
    if prep.left_out:
        details["optional_left_out"] = prep.left_out
    if expected_source:
        details["expected_source"] = expected_source
    if protocol == "http":
        fields = tok.json_fields(prep.arrays)
        if fields is None:
            why = tok.why_not_json(prep.arrays)
            grpc_too = "grpc" in opts.protocols and ctx.server.url("grpc") is not None
            if grpc_too:
                return ctx.entry(protocol, model, "skip", f"decoupled model over HTTP "
                                 f"(generate_stream): {why}; inferred over gRPC instead",
                                 details, started)
            return ctx.entry(protocol, model, "error", f"decoupled model: {why}, so HTTP "
                             "generate_stream cannot send the request, and gRPC is not "
                             "among this check's protocols: nothing was inferred",
                             details, started)
        details["endpoint"] = "generate_stream"

        def run() -> Streamed:
            return http_generate_stream(ctx, model, fields, ctx.timeout_s)
    else:
        details["endpoint"] = "ModelStreamInfer"
        names = [o["name"] for o in meta["outputs"]]

        def run() -> Streamed:
            return grpc_stream(ctx, model, prep.arrays, names, ctx.timeout_s)
    try:
        done = ctx.caller.call(ctx.endpoint(protocol), run, what="streamed inference",
                               timeout_s=ctx.timeout_s, track_silence=False)
    except CallFailure as failure:
        cause = failure.__cause__
        if isinstance(cause, StreamFailed):
            details["responses"] = cause.figures.responses
            if failure.kind == "timeout":  # the caller's message leaves out what came
                details["stream_message"] = str(cause)
        return ctx.failure_entry(protocol, model, failure, started, details)
    except Exception as exc:  # noqa: BLE001 - tritonclient refusing our tensors is ours
        return ctx.entry(protocol, model, "error", "cannot stream the request: "
                         f"{type(exc).__name__}: {exc}", details, started)
    details.update(done.figures.summary(done.t0))
    details.pop("tokens", None)
    details["final"] = done.final
    problems = _judge(done, meta, mbs, protocol, expected, details)
    if problems:
        details["problems"] = problems
        return ctx.entry(protocol, model, "fail", "; ".join(problems), details, started)
    gaps = details["itl_ms"]
    message = "{} responses over {}: first after {:.1f} ms, {} in {:.1f} ms".format(
        details["responses"], details["endpoint"], details["ttft_ms"] or 0.0,
        f"gaps {sum(gaps) / len(gaps):.1f} ms on average" if gaps else "no gaps",
        details["e2e_ms"] or 0.0)
    if expected:
        message += ", matched the expected outputs"
    return ctx.entry(protocol, model, "pass", message, details, started)
