"""The probe's HPACK (``hpctriton_probe.net.hpack``) against the ``hpack`` package, the
encoder/decoder of the Python HTTP/2 stack: the Huffman table is RFC 7541 Appendix B
as that package has it, strings and header blocks from either side decode alike, and
RFC 7541 Appendix C's examples decode to the RFC's header lists."""

from __future__ import annotations

import random

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from hpctriton_probe.net import hpack as ours


def test_huffman_table_is_the_rfcs_as_the_hpack_package_has_it() -> None:
    assert [c for c, _ in ours.HUFFMAN_CODES] == list(REQUEST_CODES)
    assert [n for _, n in ours.HUFFMAN_CODES] == list(REQUEST_CODES_LENGTH)
    assert [bytes(n) for n, _ in ours.STATIC_TABLE][:3] == [b":authority", b":method",
                                                            b":method"]
    assert len(ours.STATIC_TABLE) == 61


def test_huffman_strings_from_the_hpack_package_decode_alike() -> None:
    encoder = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
    rng = random.Random(7)
    samples = [bytes(range(256)), b"", b"grpc-status", b"application/grpc"]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
                for _ in range(2000)]
    for raw in samples:
        assert ours.huffman_decode(encoder.encode(raw)) == raw


@pytest.mark.parametrize("bad, why", [
    (b"\xff\xff\xff\xff", "EOS"),       # 30 ones: the EOS symbol itself
    (b"\x00", "padding"),               # '0' (5 bits) then 3 zero bits: not a prefix of EOS
    (b"\x1f\xff", "padding"),           # 'a'... then 8+ one bits of padding
])
def test_invalid_huffman_is_a_compression_error(bad: bytes, why: str) -> None:
    with pytest.raises(ours.HpackError, match=why):
        ours.huffman_decode(bad)


def _random_headers(rng: random.Random) -> list[tuple[str, str]]:
    names = [":status", "content-type", "grpc-status", "grpc-message", "date", "server",
             "x-request-id", "cache-control", "set-cookie", "grpc-encoding"]
    return [(rng.choice(names) + ("" if rng.random() < 0.7 else f"-{rng.randrange(9)}"),
             "".join(rng.choice("abcXYZ 019/%é") for _ in range(rng.randrange(0, 30))))
            for _ in range(rng.randrange(1, 8))]


@pytest.mark.parametrize("huffman", [True, False])
def test_blocks_from_the_hpack_encoder_decode_alike_through_table_changes(
        huffman: bool) -> None:
    """A long run of blocks: the dynamic table fills, evicts and is resized (size
    updates at the start of blocks), and our table stays in step with the encoder's."""
    rng = random.Random(11)
    encoder = hpack.Encoder()
    decoder = ours.HpackDecoder()
    for i in range(1500):
        if i % 200 == 199:
            encoder.header_table_size = rng.choice([0, 256, 1024, 4096])
        headers = _random_headers(rng)
        block = encoder.encode(headers, huffman=huffman)
        expected = [(n.encode(), v.encode()) for n, v in headers]
        assert decoder.decode(block) == expected
        again = encoder.encode(headers, huffman=huffman)  # now mostly table indexes
        assert decoder.decode(again) == expected
    assert decoder.cache_hits > 0


def test_rfc7541_appendix_c6_responses_with_huffman_and_eviction() -> None:
    """C.6: three responses, table size 256, entries evicted."""
    blocks = [
        "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad"
        "171863c78f0b97c8e9ae82ae43d3",
        "4883640effc1c0bf",
        "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2"
        "e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ]
    decoder = ours.HpackDecoder(256)
    decoder.max_size = 256
    first = decoder.decode(bytes.fromhex(blocks[0]))
    assert first == [(b":status", b"302"), (b"cache-control", b"private"),
                     (b"date", b"Mon, 21 Oct 2013 20:13:21 GMT"),
                     (b"location", b"https://www.example.com")]
    assert decoder.decode(bytes.fromhex(blocks[1]))[0] == (b":status", b"307")
    third = decoder.decode(bytes.fromhex(blocks[2]))
    assert third[-1] == (b"set-cookie",
                         b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
    assert decoder.size == 215  # the RFC's table size after C.6.3


def test_our_stateless_request_block_decodes_with_the_hpack_package() -> None:
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/a/B"),
              (b":authority", b"h:1"), (b"content-type", b"application/grpc"),
              (b"te", b"trailers"), (b"authorization", b"Bearer x" * 40),
              (b"x-" + b"k" * 200, b"v" * 300)]
    block = ours.encode_block(fields, [b"authorization"])
    assert hpack.Decoder().decode(block, raw=True) == fields
    # the encoder never adds to the table: decoding it twice gives the same, no growth
    decoder = ours.HpackDecoder()
    assert decoder.decode(block) == decoder.decode(block) == fields
    assert decoder.size == 0
    assert b"\x10" in block  # authorization: "never indexed" (RFC 7541 section 7.1.3)


@pytest.mark.parametrize("block, why", [
    (b"\xbe", "beyond the table"),          # index 62: the dynamic table is empty
    (b"\x80", "index 0"),
    (b"\x3f\xe1\x1f", "above"),             # table size update to 4096+? above allowed
    (b"\x82\x20", "after a header"),        # size update after a field
    (b"\x40\x05ab", "truncated"),
])
def test_malformed_blocks_are_compression_errors(block: bytes, why: str) -> None:
    decoder = ours.HpackDecoder(1024)
    with pytest.raises(ours.HpackError, match=why):
        decoder.decode(block)


def test_integers_round_trip_with_the_hpack_package() -> None:
    from hpack.hpack import decode_integer, encode_integer

    for value in (0, 1, 30, 31, 127, 128, 1337, 2 ** 20, 2 ** 31 - 1):
        for prefix in (4, 5, 6, 7):
            raw = ours.encode_int(value, prefix)
            assert bytes(encode_integer(value, prefix)) == raw
            assert decode_integer(raw, prefix)[0] == ours.decode_int(raw, 0, prefix)[0] == value
