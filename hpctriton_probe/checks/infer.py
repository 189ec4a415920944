"""Infer: a real inference per model and protocol, outputs checked.

Inputs come from the model's metadata (synthesized) or from a perf_analyzer input-data
file; every output of the model's metadata must come back with the declared datatype
and a fitting shape; expected outputs (a file, or the input file's
``validation_data``) are compared value by value. A decoupled model is streamed
(gRPC ``ModelStreamInfer``, HTTP ``generate_stream``) until its final response:
``hpctriton_probe.load.stream_infer``.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

from hpctriton_probe.checks.base import Check, CheckContext, model_info
from hpctriton_probe.load import inputs as inp
from hpctriton_probe.net import features
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.spec import InferOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry


def _output_datatype(result: Any, name: str) -> Optional[str]:
    out = result.get_output(name)
    if out is None:
        return None
    if isinstance(out, dict):  # HTTP
        return out.get("datatype")
    return getattr(out, "datatype", None)  # gRPC protobuf


def _unsupported_tensors(meta: Dict[str, Any]) -> Dict[str, str]:
    """``{tensor name: reason}`` for inputs and outputs whose datatype the installed
    tritonclient cannot encode or decode (BF16 in older releases)."""
    out: Dict[str, str] = {}
    problems: Dict[str, Optional[str]] = {}
    for io in meta["inputs"] + meta["outputs"]:
        datatype = io["datatype"]
        if datatype not in problems:
            problems[datatype] = features.datatype_problem(datatype)
        problem = problems[datatype]
        if problem:
            out[io["name"]] = problem
    return out


def _load_files(ctx: CheckContext, model: str) -> tuple:
    data_path = inp.resolve_file_option(ctx.options.input_data, model, ctx.base_dir)
    expected_path = inp.resolve_file_option(ctx.options.expected_outputs, model, ctx.base_dir)
    data = inp.load_data_file(data_path) if data_path else None
    expected = inp.load_data_file(expected_path) if expected_path else None
    return data, data_path, expected, expected_path


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
    for protocol, skip in ctx.protocols():
        if skip:
            yield ctx.entry(protocol, None, "skip", skip)
            continue
        for model in ctx.models:
            yield _infer(ctx, protocol, model)


def _infer(ctx: CheckContext, protocol: str, model: str) -> ResultEntry:
    started = time.monotonic()
    opts = ctx.options
    try:
        meta, config = model_info(ctx, protocol, model)
    except CallFailure as failure:
        return ctx.failure_entry(protocol, model, failure, started)
    if config["decoupled"]:  # one request, every response until the final one
        from hpctriton_probe.load.stream_infer import infer_decoupled

        return infer_decoupled(ctx, protocol, model, meta, config, started)
    mbs = config["max_batch_size"]
    details: Dict[str, Any] = {"batch_size": opts.batch_size if mbs > 0 else None,
                               "max_batch_size": mbs}
    unsupported = _unsupported_tensors(meta)
    if unsupported:
        details["unsupported_tensors"] = unsupported
        reasons = sorted(set(unsupported.values()))
        return ctx.entry(protocol, model, "skip", "{} (tensors {}): upgrade tritonclient to "
                         "check this model's inference".format(
                             "; ".join(reasons), ", ".join(sorted(unsupported))),
                         details, started)
    try:
        data, data_path, expected, expected_path = _load_files(ctx, model)
        prep = inp.prepare(meta, mbs, batch_size=opts.batch_size, shapes=opts.shapes,
                           data=data, data_path=data_path or "", expected=expected,
                           expected_path=expected_path or "")
    except inp.InputError as exc:
        return ctx.entry(protocol, model, "error", str(exc), details, started)
    details["inputs"] = prep.describe()
    details["input_source"] = prep.source if prep.source == "synthesized" else data_path
    if prep.defaulted_dims:
        details["defaulted_dims"] = prep.defaulted_dims
    if prep.expected:
        details["expected_source"] = expected_path or (data_path + " validation_data")

    from hpctriton_probe.net.clients import import_client

    module = import_client(protocol)
    try:
        infer_inputs = []
        for name, datatype, array in prep.arrays:
            item = module.InferInput(name, list(array.shape), datatype)
            item.set_data_from_numpy(array)
            infer_inputs.append(item)
        requested = [module.InferRequestedOutput(o["name"]) for o in meta["outputs"]]
    except Exception as exc:  # noqa: BLE001 - tritonclient refusing our tensors is ours
        return ctx.entry(protocol, model, "error",
                         f"cannot build the request: {type(exc).__name__}: {exc}",
                         details, started)

    extra: Dict[str, Any] = {}
    if config["sequence_batching"]:
        # A stateful model needs a correlation id: one request that starts and ends its
        # own sequence (a random id) touches no other client's state.
        extra = {"sequence_id": int.from_bytes(os.urandom(4), "big") | 1,
                 "sequence_start": True, "sequence_end": True}
        details["sequence_id"] = extra["sequence_id"]
    t0 = time.monotonic()
    try:
        result = ctx.call(protocol, "infer", model, infer_inputs, outputs=requested,
                          what="inference", track_silence=False, **extra)
    except CallFailure as failure:
        return ctx.failure_entry(protocol, model, failure, started, details)
    details["latency_ms"] = round((time.monotonic() - t0) * 1000, 2)
    return _check_outputs(ctx, protocol, model, meta, mbs, prep, result, details, started)


def _check_outputs(ctx: CheckContext, protocol: str, model: str, meta: Dict[str, Any],
                   mbs: int, prep: inp.PreparedInputs, result: Any, details: Dict[str, Any],
                   started: float) -> ResultEntry:
    problems = []
    outputs = []
    batch = ctx.options.batch_size if mbs > 0 else None
    got_arrays = {}
    for out in meta["outputs"]:
        name = out["name"]
        try:
            array = result.as_numpy(name)
        except Exception as exc:  # noqa: BLE001 - a malformed answer is the server's
            problems.append(f"output {name} cannot be decoded: {exc}")
            continue
        if array is None:
            problems.append(f"output {name} missing")
            continue
        got_arrays[name] = array
        datatype = _output_datatype(result, name)
        shape = [int(d) for d in array.shape]
        outputs.append({"name": name, "datatype": datatype, "shape": shape,
                        "preview": inp.preview(array)})
        if datatype != out["datatype"]:
            problems.append("output {} is {}, the model declares {}".format(
                name, datatype, out["datatype"]))
        if not inp.shape_fits(out["shape"], shape, batch):
            problems.append("output {} has shape {}, the model declares {}{}".format(
                name, shape, out["shape"], f" with batch {batch}" if batch else ""))
    details["outputs"] = outputs
    if prep.expected:
        comparisons = []
        for name, expected in sorted(prep.expected.items()):
            datatype = next(o["datatype"] for o in meta["outputs"] if o["name"] == name)
            cmp = inp.compare(name, datatype, expected, got_arrays.get(name))
            comparisons.append(cmp)
            if cmp["status"] != "match":
                problems.append(cmp["message"])
        details["compared"] = comparisons
    if problems:
        details["problems"] = problems
        return ctx.entry(protocol, model, "fail", "; ".join(problems), details, started)
    message = "{} output(s) ok in {:.1f} ms".format(len(outputs), details["latency_ms"])
    if prep.expected:
        message += ", {} matched expected values".format(
            ", ".join(sorted(prep.expected)))
    return ctx.entry(protocol, model, "pass", message, details, started)


CHECK = Check("infer", InferOptions, run)
