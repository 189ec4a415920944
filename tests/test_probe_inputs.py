"""Inputs for the infer check: synthesized for every datatype, or read from
perf_analyzer input-data files; outputs compared with expected values."""

from __future__ import annotations

import base64
import json
import os
import struct

import numpy as np
import pytest

from hpctriton_probe.load import inputs as inp

DATA = os.path.join(os.path.dirname(__file__), "data")


def _meta(inputs: list, outputs: list | None = None) -> dict:
    def io(items: list) -> list:
        return [{"name": n, "datatype": d, "shape": list(s)} for n, d, s in items]
    return {"name": "m", "versions": ["1"], "platform": "python", "inputs": io(inputs),
            "outputs": io(outputs or [])}


def _bf16_dtype() -> np.dtype:
    from tritonclient.utils import triton_to_np_dtype

    return np.dtype(triton_to_np_dtype("BF16"))


EXPECTED_DTYPES = {"BOOL": np.dtype(bool), "INT8": np.dtype("int8"),
                   "INT16": np.dtype("int16"), "INT32": np.dtype("int32"),
                   "INT64": np.dtype("int64"), "UINT8": np.dtype("uint8"),
                   "UINT16": np.dtype("uint16"), "UINT32": np.dtype("uint32"),
                   "UINT64": np.dtype("uint64"), "FP16": np.dtype("float16"),
                   "FP32": np.dtype("float32"), "FP64": np.dtype("float64"),
                   "BYTES": np.dtype(object)}


@pytest.mark.parametrize("datatype", inp.TRITON_DATATYPES)
def test_synthesizes_every_triton_datatype_with_batch_dimension(datatype: str) -> None:
    meta = _meta([("X", datatype, [-1, 2, 3])])
    prep = inp.prepare(meta, max_batch_size=4, batch_size=3)
    ((name, dt, array),) = prep.arrays
    assert (name, dt, array.shape) == ("X", datatype, (3, 2, 3))
    want = _bf16_dtype() if datatype == "BF16" else EXPECTED_DTYPES[datatype]
    assert array.dtype == want
    if datatype == "BYTES":
        assert all(isinstance(v, bytes) and v.startswith(b"hpctriton-") for v in array.ravel())


@pytest.mark.parametrize("datatype", inp.TRITON_DATATYPES)
def test_synthesized_tensors_are_accepted_by_tritonclient(datatype: str) -> None:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    array = inp.synthesize(datatype, [1, 4])
    for module in (httpclient, grpcclient):
        module.InferInput("X", [1, 4], datatype).set_data_from_numpy(array)


def test_model_without_batching_gets_no_batch_dimension() -> None:
    prep = inp.prepare(_meta([("X", "FP32", [2, 3])]), max_batch_size=0)
    assert prep.arrays[0][2].shape == (2, 3)
    with pytest.raises(inp.InputError, match="does not batch"):
        inp.prepare(_meta([("X", "FP32", [2, 3])]), max_batch_size=0, batch_size=2)


def test_batch_size_above_max_batch_size_is_refused() -> None:
    with pytest.raises(inp.InputError, match="max_batch_size 2"):
        inp.prepare(_meta([("X", "FP32", [-1, 3])]), max_batch_size=2, batch_size=4)


def test_dynamic_dims_come_from_shapes_option() -> None:
    meta = _meta([("X", "FP32", [-1, 2, -1]), ("S", "BYTES", [-1, -1])])
    prep = inp.prepare(meta, max_batch_size=8, batch_size=2, shapes={"X": [2, 5], "S": [7]})
    assert [a.shape for _, _, a in prep.arrays] == [(2, 2, 5), (2, 7)]
    assert prep.defaulted_dims == {}


def test_dynamic_dims_without_shapes_default_to_one_and_say_so() -> None:
    prep = inp.prepare(_meta([("S", "BYTES", [-1, -1])]), max_batch_size=8)
    assert prep.arrays[0][2].shape == (1, 1)
    assert prep.defaulted_dims == {"S": [1]}


def test_shapes_option_that_contradicts_the_model_is_an_input_error() -> None:
    with pytest.raises(inp.InputError, match=r"shapes.X is \[4, 4\]"):
        inp.prepare(_meta([("X", "FP32", [-1, 2, -1])]), max_batch_size=8,
                    shapes={"X": [4, 4]})


def test_synthesized_inputs_differ_from_each_other() -> None:
    prep = inp.prepare(_meta([("A", "INT32", [-1, 16]), ("B", "INT32", [-1, 16])]), 8)
    a, b = (arr for _, _, arr in prep.arrays)
    assert not np.array_equal(a, b)


def test_reads_perf_analyzer_plain_lists_and_validation_data() -> None:
    data = inp.load_data_file(os.path.join(DATA, "simple_input_data.json"))
    expected = inp.load_data_file(os.path.join(DATA, "simple_expected.json"))
    meta = _meta([("INPUT0", "INT32", [-1, 16]), ("INPUT1", "INT32", [-1, 16])],
                 [("OUTPUT0", "INT32", [-1, 16]), ("OUTPUT1", "INT32", [-1, 16])])
    prep = inp.prepare(meta, 8, data=data, expected=expected)
    assert prep.source == "file"
    assert prep.arrays[0][2].tolist() == [list(range(16))]
    assert prep.expected["OUTPUT0"].tolist() == [list(range(1, 17))]
    assert prep.expected["OUTPUT1"].dtype == np.int32


def test_reads_content_shape_and_b64_and_batches_entries_round_robin() -> None:
    data = inp.load_data_file(os.path.join(DATA, "simple_input_data_variants.json"))
    meta = _meta([("INPUT0", "INT32", [-1, 16]), ("INPUT1", "INT32", [-1, 16])],
                 [("OUTPUT0", "INT32", [-1, 16]), ("OUTPUT1", "INT32", [-1, 16])])
    prep = inp.prepare(meta, 8, batch_size=3, data=data)
    in0, in1 = (a for _, _, a in prep.arrays)
    assert in0.shape == (3, 16)
    assert in0[1].tolist() == [2 * x for x in range(16)] and in0[2].tolist() == list(range(16))
    assert in1.tolist() == [[1] * 16] * 3
    assert prep.expected["OUTPUT0"][1].tolist() == [2 * x + 1 for x in range(16)]


def test_b64_bytes_tensors_use_length_prefixed_elements(tmp_path: object) -> None:
    raw = b"".join(struct.pack("<I", len(s)) + s for s in (b"ab", b"", b"c\x00d"))
    value = {"content": {"b64": base64.b64encode(raw).decode()}, "shape": [3]}
    array = inp.tensor_from_json(value, "BYTES", [-1], "t")
    assert array.tolist() == [b"ab", b"", b"c\x00d"]


def test_b64_bf16_values_are_decoded_from_their_upper_float32_bits() -> None:
    halves = np.array([1.5, -2.0, 0.25], dtype=np.float32).view(np.uint32) >> 16
    value = {"b64": base64.b64encode(halves.astype("<u2").tobytes()).decode()}
    array = inp.tensor_from_json(value, "BF16", [3], "t")
    assert array.astype(np.float32).tolist() == [1.5, -2.0, 0.25]


def test_one_dynamic_dim_is_inferred_from_the_value_count() -> None:
    array = inp.tensor_from_json(list(range(12)), "INT64", [3, -1], "t")
    assert array.shape == (3, 4)


@pytest.mark.parametrize("doc, message", [
    ("not json", "cannot read input-data file"),
    ('{"rows": []}', 'with a "data" list'),
    ('{"data": []}', "must be a non-empty list"),
    ('{"data": [{"INPUT0": [1, 2]}]}', "2 values do not fill shape"),
    ('{"data": [{"OTHER": [1]}]}', "has no tensor 'INPUT0'"),
    ('{"data": [{"INPUT0": {"b64": "@@@"}}]}', "bad base64"),
])
def test_bad_input_data_files_are_input_errors(tmp_path: object, doc: str, message: str) -> None:
    path = os.path.join(str(tmp_path), "bad.json")
    with open(path, "w") as fh:
        fh.write(doc)
    with pytest.raises(inp.InputError, match=message):
        data = inp.load_data_file(path)
        inp.prepare(_meta([("INPUT0", "INT32", [-1, 16])]), 8, data=data, data_path=path)


def test_compare_reports_first_mismatches_with_their_index() -> None:
    expected = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = expected.copy()
    got[1, 2] = 99
    out = inp.compare("OUT", "INT32", expected, got)
    assert out["status"] == "mismatch" and out["mismatches"] == 1
    assert out["first"] == [{"index": [1, 2], "expected": 5, "got": 99}]
    assert inp.compare("OUT", "INT32", expected, expected)["status"] == "match"


def test_compare_allows_float_rounding_but_not_real_differences() -> None:
    e = np.array([1.0, 2.0], dtype=np.float32)
    assert inp.compare("O", "FP32", e, e + 1e-7)["status"] == "match"
    assert inp.compare("O", "FP32", e, e + 1e-2)["status"] == "mismatch"
    assert inp.compare("O", "FP16", e.astype(np.float16), e.astype(np.float16))["status"] \
        == "match"


def test_compare_bytes_and_shape_and_missing() -> None:
    e = np.array([b"a", b"b"], dtype=object)
    assert inp.compare("O", "BYTES", e, np.array([b"a", b"b"], dtype=object))["status"] \
        == "match"
    assert inp.compare("O", "BYTES", e, np.array([b"a", b"x"], dtype=object))["status"] \
        == "mismatch"
    assert inp.compare("O", "BYTES", e, np.array([b"a"], dtype=object))["message"].startswith(
        "output O has shape [1]")
    assert inp.compare("O", "BYTES", e, None)["status"] == "missing"


def test_file_options_are_per_model_and_relative_to_the_bundle() -> None:
    assert inp.resolve_file_option("in.json", "m", "/b") == "/b/in.json"
    assert inp.resolve_file_option({"m": "/abs.json"}, "m", "/b") == "/abs.json"
    assert inp.resolve_file_option({"other": "x.json"}, "m", "/b") is None
    assert json.loads(json.dumps(inp.preview(np.array([1.5, 2], dtype=np.float16)))) == [1.5, 2]
