"""Input tensors for the infer check, and comparison of outputs with expected values.

Inputs are either synthesized from the model's metadata (every Triton datatype,
deterministic values, ``max_batch_size`` honoured, ``-1`` dims from the ``shapes``
option) or read from a perf_analyzer input-data JSON file::

    {"data": [{"INPUT0": [1, 2, ...], "INPUT1": {"content": [...], "shape": [16]}},
              {"INPUT0": {"b64": "..."}, ...}],
     "validation_data": [{"OUTPUT0": [...], ...}]}

Each ``data`` entry is one batch element (perf_analyzer's layout: row-major, no batch
dimension); a batch of ``batch_size`` takes entries round robin. ``validation_data``
(or ``data`` of a separate expected-outputs file) holds outputs in the same layout.

numpy and tritonclient are imported inside functions: numpy refuses to be imported from
a zip file, and the probe must start fast.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: Every datatype of Triton's inference protocol.
TRITON_DATATYPES = ("BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
                    "UINT64", "FP16", "FP32", "FP64", "BF16", "BYTES")

_NUMPY_NAMES = {"BOOL": "bool", "INT8": "int8", "INT16": "int16", "INT32": "int32",
                "INT64": "int64", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32",
                "UINT64": "uint64", "FP16": "float16", "FP32": "float32", "FP64": "float64",
                "BYTES": "object"}

#: Relative tolerance when comparing floating-point outputs with expected values.
FLOAT_RTOL = {"FP16": 1e-2, "BF16": 1e-2, "FP32": 1e-5, "FP64": 1e-9}
FLOAT_ATOL = {"FP16": 1e-3, "BF16": 1e-2, "FP32": 1e-6, "FP64": 1e-12}


class InputError(ValueError):
    """Inputs cannot be built (bad file, unknown input, unknown shape): the probe's
    problem, not the server's, so the check reports ``error``."""


def np_dtype(datatype: str) -> Any:
    """The numpy dtype tritonclient expects for ``datatype``.

    BF16 depends on the tritonclient version: older ones take ``np.float32`` (and
    truncate), newer ones (r26.06 on) ``ml_dtypes.bfloat16``; asking the installed
    tritonclient gets it right for both.
    """
    import numpy as np

    if datatype not in TRITON_DATATYPES:
        raise InputError(f"unknown Triton datatype {datatype!r}")
    try:
        from tritonclient.utils import triton_to_np_dtype
    except ImportError:
        triton_to_np_dtype = None
    if triton_to_np_dtype is not None:
        found = triton_to_np_dtype(datatype)
        if found is None:
            raise InputError(f"this tritonclient cannot send {datatype} tensors; upgrade it "
                             "(pip install -U 'tritonclient[http,grpc]')")
        return np.dtype(found)
    if datatype == "BF16":
        return np.dtype("float32")
    return np.dtype(_NUMPY_NAMES[datatype])


def shape_fits(declared: List[int], got: List[int], batch: Optional[int]) -> bool:
    """Whether an output of shape ``got`` fits the model's declared dims (-1 is any),
    the first dimension being the batch of ``batch`` requests when given."""
    if len(declared) != len(got):
        return False
    # noqa below: zip(strict=) needs Python 3.10; the lengths were compared just above.
    for i, (d, g) in enumerate(zip(declared, got)):  # noqa: B905
        if i == 0 and batch is not None:
            if g != batch:
                return False
        elif d >= 0 and d != g:
            return False
    return True


def model_dims(io: dict, max_batch_size: int) -> list:
    """The dims of one batch element: the metadata shape without the batch dimension."""
    shape = [int(d) for d in io["shape"]]
    return shape[1:] if max_batch_size > 0 else shape


def resolve_dims(name: str, dims: list, shapes: dict, defaulted: dict) -> list:
    """Replace ``-1`` dims from ``shapes[name]``; without it each ``-1`` becomes 1 and the
    choice is recorded in ``defaulted`` (so the results say what was sent)."""
    if name in shapes:
        given = [int(d) for d in shapes[name]]
        if len(given) != len(dims) or any(d not in (-1, g) for d, g in zip(dims, given)):  # noqa: B905 - 3.8
            raise InputError(f"shapes.{name} is {given} but the model's {name} has dims "
                             f"{dims} (without the batch dimension)")
        return given
    if any(d < 0 for d in dims):
        out = [1 if d < 0 else d for d in dims]
        defaulted[name] = out
        return out
    return list(dims)


def synthesize(datatype: str, shape: list, offset: int = 0) -> Any:
    """Deterministic, exactly representable values of ``datatype`` in ``shape``."""
    import numpy as np

    count = 1
    for d in shape:
        count *= d
    base = (np.arange(count, dtype=np.int64) + offset) % 7
    if datatype == "BYTES":
        return np.array([(f"hpctriton-{int(v)}").encode("ascii") for v in base],
                        dtype=np.object_).reshape(shape)
    if datatype == "BOOL":
        return (base % 2 == 0).reshape(shape)
    dtype = np_dtype(datatype)
    values: Any
    if datatype in ("FP16", "FP32", "FP64", "BF16"):
        values = (base.astype(np.float64) - 3.0) * 0.5
    elif datatype.startswith("UINT"):
        values = base + 1
    else:
        values = base - 3
    return values.astype(np.float32 if datatype == "BF16" else dtype).astype(dtype).reshape(shape)


# ----------------------------------------------------------------------- input-data files


def load_data_file(path: str) -> dict:
    """Read a perf_analyzer input-data JSON file: ``{"data": [...], "validation_data": [...]}``.

    Sequence-model files (``data`` as a list of streams) are accepted: the first stream
    is used.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read input-data file {path}: {exc}") from exc
    if not isinstance(doc, dict) or "data" not in doc and "validation_data" not in doc:
        raise InputError(f"{path}: expected a JSON object with a \"data\" list (perf_analyzer "
                         "input-data format)")
    out = {}
    for key in ("data", "validation_data"):
        entries = doc.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list) or not entries:
            raise InputError(f"{path}: \"{key}\" must be a non-empty list")
        if isinstance(entries[0], list):  # streams of a sequence model: take the first
            entries = entries[0]
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise InputError(f"{path}: {key}[{i}] must be an object of tensors")
        out[key] = entries
    return out


def _decode_bytes_elements(raw: bytes, where: str) -> list:
    """BYTES tensors in binary form: each element is a 4-byte little-endian length
    followed by that many bytes."""
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InputError(f"{where}: truncated BYTES element length")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise InputError(f"{where}: truncated BYTES element")
        out.append(raw[pos:pos + n])
        pos += n
    return out


def _from_b64(text: Any, datatype: str, where: str) -> Any:
    import numpy as np

    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{where}: bad base64: {exc}") from exc
    if datatype == "BYTES":
        return np.array(_decode_bytes_elements(raw, where), dtype=np.object_)
    dtype = np_dtype(datatype)
    if datatype == "BF16":
        if len(raw) % 2:
            raise InputError(f"{where}: BF16 data must have an even number of bytes")
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).astype(dtype)
    width = dtype.itemsize
    if len(raw) % width:
        raise InputError(f"{where}: {len(raw)} bytes is not a whole number of {datatype} elements")
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)


def _from_list(values: Any, datatype: str, where: str) -> Any:
    import numpy as np

    if datatype == "BYTES":
        # Annotated: mypy's view of numpy as Python 3.8 sees it loses the object dtype.
        flat: np.ndarray[Any, np.dtype[np.object_]] = np.array(values, dtype=np.object_).ravel()
        return np.array([v.encode("utf-8") if isinstance(v, str) else
                         v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat],
                        dtype=np.object_)
    dtype = np_dtype(datatype)
    try:
        if datatype == "BF16":
            return np.array(values, dtype=np.float32).ravel().astype(dtype)
        return np.array(values, dtype=dtype).ravel()
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{where}: values are not {datatype}: {exc}") from exc


def tensor_from_json(value: Any, datatype: str, dims: list, where: str) -> Any:
    """One batch element from a perf_analyzer tensor value, shaped as the model expects.

    ``dims`` may hold ``-1`` where the file's ``shape`` must decide.
    """
    shape = None
    content = value
    if isinstance(value, dict):
        if "content" in value:
            content = value["content"]
            shape = value.get("shape")
        elif "b64" in value:
            content = value
        else:
            raise InputError(f"{where}: expected a list, {{\"content\": ..., \"shape\": ...}} or "
                             "{\"b64\": ...}")
    if isinstance(content, dict):
        if "b64" not in content:
            raise InputError(f"{where}: content must be a list or {{\"b64\": ...}}")
        flat = _from_b64(content["b64"], datatype, where)
    elif isinstance(content, list):
        flat = _from_list(content, datatype, where)
    else:
        flat = _from_list([content], datatype, where)
    if shape is not None:
        shape = [int(d) for d in shape]
        if len(shape) == len(dims) + 1 and shape[0] == 1:
            shape = shape[1:]  # a batch-1 dimension given explicitly
    elif all(d >= 0 for d in dims):
        shape = list(dims)
    else:
        known = 1
        for d in dims:
            known *= d if d >= 0 else 1
        if sum(1 for d in dims if d < 0) == 1 and flat.size % known == 0:
            shape = [flat.size // known if d < 0 else d for d in dims]
        else:
            raise InputError(f"{where}: the model's dims {dims} are dynamic; give \"shape\" in the "
                             "file (perf_analyzer layout)")
    count = 1
    for d in shape:
        count *= d
    if count != flat.size:
        raise InputError(f"{where}: {flat.size} values do not fill shape {shape}")
    if len(shape) != len(dims) or any(d >= 0 and d != s for d, s in zip(dims, shape)):  # noqa: B905
        raise InputError(f"{where}: shape {shape} does not fit the model's dims {dims}")
    return flat.reshape(shape)


def batch_from_entries(entries: list, name: str, datatype: str, dims: list,
                       max_batch_size: int, batch_size: int, where: str) -> Any:
    """A full tensor for ``name``: ``batch_size`` entries stacked round robin, or the first
    entry alone for a model without batching."""
    import numpy as np

    rows = entries[:1] if max_batch_size <= 0 else [
        entries[i % len(entries)] for i in range(batch_size)]
    tensors = []
    for i, entry in enumerate(rows):
        if name not in entry:
            raise InputError("{}: entry {} has no tensor {!r} (it has: {})".format(
                where, i % len(entries), name, ", ".join(sorted(entry)) or "none"))
        tensors.append(tensor_from_json(entry[name], datatype, dims,
                                        f"{where}[{i % len(entries)}].{name}"))
    if max_batch_size <= 0:
        return tensors[0]
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise InputError(f"{where}: entries for {name} have different shapes "
                         f"{sorted(shapes)}; a batch needs one shape")
    return np.stack(tensors)


# ------------------------------------------------------------------------------ building


class PreparedInputs:
    """What the infer check sends, and what it expects back."""

    def __init__(self) -> None:
        #: ``(name, datatype, numpy array)`` per input.
        self.arrays: List[Tuple[str, str, Any]] = []
        #: Output name -> numpy array.
        self.expected: Dict[str, Any] = {}
        self.source = "synthesized"
        #: Input name -> the dims given to its dynamic (-1) dimensions.
        self.defaulted_dims: Dict[str, List[int]] = {}
        #: Optional inputs not sent (nothing gave them a value).
        self.left_out: List[str] = []

    def describe(self) -> list:
        return [{"name": n, "datatype": dt, "shape": list(a.shape)} for n, dt, a in self.arrays]


def prepare(metadata: dict, max_batch_size: int, *, batch_size: int = 1,
            shapes: Optional[dict] = None, data: Optional[dict] = None,
            data_path: str = "", expected: Optional[dict] = None,
            expected_path: str = "", optional: Sequence[str] = (),
            fixed: Optional[Dict[str, Any]] = None) -> PreparedInputs:
    """Inputs for one model from its normalized metadata.

    ``data`` and ``expected`` are documents from ``load_data_file``. Without ``data``,
    inputs are synthesized. ``batch_size`` > 1 needs a model with ``max_batch_size``
    of at least that. ``fixed``: values of inputs given by name (the load check's
    ``inputs`` and prompts), in perf_analyzer's tensor layout, one batch element each.
    ``optional``: the model's optional inputs (its config says so), which are left out
    unless ``fixed`` or the first ``data`` entry gives them: a made-up value of an
    optional input (a token limit of -3) would change what the model does.
    """
    shapes = shapes or {}
    fixed = fixed or {}
    prep = PreparedInputs()
    if max_batch_size <= 0 and batch_size != 1:
        raise InputError(f"batch_size {batch_size} asked, but the model does not batch "
                         "(max_batch_size 0)")
    if 0 < max_batch_size < batch_size:
        raise InputError(f"batch_size {batch_size} is more than the model's "
                         f"max_batch_size {max_batch_size}")
    entries = (data or {}).get("data")
    if data is not None and not entries:
        raise InputError("{}: no \"data\" entries".format(data_path or "input data"))
    names = [io["name"] for io in metadata["inputs"]]
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise InputError("inputs: {} {} not an input of the model (inputs: {})".format(
            ", ".join(unknown), "is" if len(unknown) == 1 else "are", ", ".join(names)))
    for index, io in enumerate(metadata["inputs"]):
        name, datatype = io["name"], io["datatype"]
        dims = model_dims(io, max_batch_size)
        if name in fixed:
            arr = batch_from_entries([{name: fixed[name]}], name, datatype,
                                     [int(d) for d in shapes.get(name, dims)],
                                     max_batch_size, batch_size, "inputs")
            prep.arrays.append((name, datatype, arr))
            continue
        if name in optional and not (entries and name in entries[0]):
            prep.left_out.append(name)
            continue
        if entries:
            prep.source = "file"
            arr = batch_from_entries(entries, name, datatype,
                                     [int(d) for d in shapes.get(name, dims)],
                                     max_batch_size, batch_size, data_path or "input data")
        else:
            full = resolve_dims(name, dims, shapes, prep.defaulted_dims)
            if max_batch_size > 0:
                full = [batch_size] + full
            arr = synthesize(datatype, full, offset=3 * index)  # inputs differ
        prep.arrays.append((name, datatype, arr))
    validation = None
    where = ""
    if expected is not None:
        validation = expected.get("validation_data") or expected.get("data")
        where = expected_path or "expected outputs"
    elif data is not None and data.get("validation_data"):
        validation = data["validation_data"]
        where = (data_path or "input data") + " validation_data"
    if validation:
        outputs = {o["name"]: o for o in metadata["outputs"]}
        names = sorted({k for entry in validation for k in entry})
        for name in names:
            if name not in outputs:
                raise InputError("{}: {!r} is not an output of the model (outputs: {})".format(
                    where, name, ", ".join(sorted(outputs))))
            io = outputs[name]
            prep.expected[name] = batch_from_entries(
                validation, name, io["datatype"], model_dims(io, max_batch_size),
                max_batch_size, batch_size, where)
    return prep


def resolve_file_option(option: Any, model: str, base_dir: str) -> Optional[str]:
    """``input_data`` / ``expected_outputs``: one path, or ``{model: path}``; relative
    paths are relative to ``base_dir`` (the bundle inside a job)."""
    if option is None:
        return None
    path = option.get(model) if isinstance(option, dict) else option
    if path is None:
        return None
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


# ----------------------------------------------------------------------------- comparing


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return repr(value)
    item = getattr(value, "item", None)
    if item is not None:
        value = item()
    if isinstance(value, float) and value != value:
        return "NaN"
    return value


def preview(array: Any, limit: int = 8) -> list:
    """The first ``limit`` values, as plain JSON values (for the results' details)."""
    import numpy as np

    flat = np.asarray(array).ravel()[:limit]
    if flat.dtype.kind not in "biufO":  # bfloat16 and friends: show as floats
        flat = flat.astype(np.float32)
    return [_plain(v) for v in flat]


def compare(name: str, datatype: str, expected: Any, got: Any, limit: int = 5) -> dict:
    """Value-by-value comparison; floats within a tolerance that suits their precision."""
    import numpy as np

    out = {"output": name, "elements": int(np.asarray(expected).size)}
    if got is None:
        out.update(status="missing", message=f"output {name} missing from the response")
        return out
    if tuple(expected.shape) != tuple(got.shape):
        out.update(status="mismatch", message=f"output {name} has shape "
                   f"{list(got.shape)}, expected {list(expected.shape)}")
        return out
    exp_flat, got_flat = expected.ravel(), got.ravel()
    if datatype == "BYTES":
        def as_bytes(v: Any) -> bytes:
            return v if isinstance(v, bytes) else str(v).encode("utf-8")
        bad = [i for i in range(exp_flat.size)
               if as_bytes(exp_flat[i]) != as_bytes(got_flat[i])]
    elif datatype in FLOAT_RTOL:
        e = exp_flat.astype(np.float64)
        g = got_flat.astype(np.float64)
        ok = np.isclose(g, e, rtol=FLOAT_RTOL[datatype], atol=FLOAT_ATOL[datatype],
                        equal_nan=True)
        bad = [int(i) for i in np.nonzero(~ok)[0]]
    else:
        bad = [int(i) for i in np.nonzero(exp_flat != got_flat)[0]]
    out["mismatches"] = len(bad)
    if bad:
        out["status"] = "mismatch"
        out["first"] = [{"index": [int(x) for x in np.unravel_index(i, expected.shape)],
                         "expected": _plain(exp_flat[i] if datatype == "BYTES" else
                                            exp_flat[i:i + 1].astype(np.float64)[0]
                                            if datatype == "BF16" else exp_flat[i]),
                         "got": _plain(got_flat[i] if datatype == "BYTES" else
                                       got_flat[i:i + 1].astype(np.float64)[0]
                                       if datatype == "BF16" else got_flat[i])}
                        for i in bad[:limit]]
        out["message"] = f"output {name}: {len(bad)} of {exp_flat.size} values differ"
    else:
        out["status"] = "match"
    return out
