"""HPACK (RFC 7541), the header compression of HTTP/2: a decoder with its dynamic
table and Huffman decoding, and a stateless encoder.

Why by hand: the probe runs in old container images that have the standard library,
tritonclient and numpy, and no HTTP/2 library; grpcio's own HTTP/2 is in C and not
reachable from Python. The tests check this module against the ``hpack`` package (the
encoder and decoder of the Python HTTP/2 stack): blocks from either side decode alike,
and the Huffman table equals that package's.

* The **encoder** never adds to the dynamic table: every field is a static-table index
  or a literal "without indexing" (or "never indexed" for values that may be secrets),
  so a request's header block is built once and sent as it is on every stream, and the
  encoder has no state to keep in step with the server.
* The **decoder** keeps the dynamic table the server's encoder fills. A server sends
  the same few header blocks again and again (``:status 200`` and
  ``content-type: application/grpc`` as table indexes, then ``grpc-status: 0``), so
  decoded blocks that did not change the table are cached by (table version, bytes).

Standard library only; Python 3.7 compatible.
"""

from collections import deque
from typing import Deque, Dict, Iterable, List, Optional, Sequence, Tuple

Header = Tuple[bytes, bytes]


class HpackError(ValueError):
    """A header block that cannot be decoded: an HTTP/2 COMPRESSION_ERROR."""


#: RFC 7541 Appendix A: the static table (index 1 is the first entry).
STATIC_TABLE: Tuple[Header, ...] = (
    (b":authority", b""), (b":method", b"GET"), (b":method", b"POST"), (b":path", b"/"),
    (b":path", b"/index.html"), (b":scheme", b"http"), (b":scheme", b"https"),
    (b":status", b"200"), (b":status", b"204"), (b":status", b"206"), (b":status", b"304"),
    (b":status", b"400"), (b":status", b"404"), (b":status", b"500"),
    (b"accept-charset", b""), (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""), (b"accept-ranges", b""), (b"accept", b""),
    (b"access-control-allow-origin", b""), (b"age", b""), (b"allow", b""),
    (b"authorization", b""), (b"cache-control", b""), (b"content-disposition", b""),
    (b"content-encoding", b""), (b"content-language", b""), (b"content-length", b""),
    (b"content-location", b""), (b"content-range", b""), (b"content-type", b""),
    (b"cookie", b""), (b"date", b""), (b"etag", b""), (b"expect", b""), (b"expires", b""),
    (b"from", b""), (b"host", b""), (b"if-match", b""), (b"if-modified-since", b""),
    (b"if-none-match", b""), (b"if-range", b""), (b"if-unmodified-since", b""),
    (b"last-modified", b""), (b"link", b""), (b"location", b""), (b"max-forwards", b""),
    (b"proxy-authenticate", b""), (b"proxy-authorization", b""), (b"range", b""),
    (b"referer", b""), (b"refresh", b""), (b"retry-after", b""), (b"server", b""),
    (b"set-cookie", b""), (b"strict-transport-security", b""), (b"transfer-encoding", b""),
    (b"user-agent", b""), (b"vary", b""), (b"via", b""), (b"www-authenticate", b""),
)
STATIC_LEN = len(STATIC_TABLE)

#: RFC 7541 Appendix B: the Huffman code of each symbol 0..255 and EOS (256), as
#: (code, length in bits), most significant bit first.
HUFFMAN_CODES: Tuple[Tuple[int, int], ...] = (
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28),
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24),
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28),
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28),
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10),
    (0xffa, 12), (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11),
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), (0xfa, 8),
    (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5),
    (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6),
    (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13),
    (0x21, 6), (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7),
    (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7), (0x65, 7),
    (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7),
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), (0x6f, 7),
    (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14),
    (0x22, 6), (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5),
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6),
    (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6),
    (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7), (0x2c, 6),
    (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11),
    (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22),
    (0xfffe7, 20), (0xfffe8, 20), (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22),
    (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23),
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24),
    (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23),
    (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22),
    (0x7fffe5, 23), (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24),
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22),
    (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22),
    (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23),
    (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20),
    (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22),
    (0x3fffe6, 22), (0x7ffff1, 23), (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20),
    (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25),
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27),
    (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21),
    (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27),
    (0xfffff2, 24), (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26),
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20),
    (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21),
    (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25),
    (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27),
    (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28),
    (0x7ffffec, 27), (0x7ffffed, 27), (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27),
    (0x3ffffee, 26), (0x3fffffff, 30),
)
EOS = 256

#: Every entry of the dynamic table costs its name, its value and 32 octets (RFC 7541
#: section 4.1).
ENTRY_OVERHEAD = 32
DEFAULT_TABLE_SIZE = 4096


# ------------------------------------------------------------------------ Huffman

#: The decoding automaton, built on first use: ``_FSM[state * 16 + nibble]`` is
#: ``(next state, symbol or -1)``; a symbol is at least 5 bits long, so a nibble ends
#: at most one. ``_PAD_OK[state]``: the bits read since the last symbol are a valid
#: padding (a prefix of EOS, i.e. all ones, at most 7 of them; RFC 7541 section 5.2).
_FSM: List[Tuple[int, int]] = []
_PAD_OK: List[bool] = []


def _build_fsm() -> None:
    # a binary tree of the codes: node -> [child0, child1]; a leaf is ~symbol (< 0)
    children: List[List[int]] = [[0, 0]]
    for sym, (code, length) in enumerate(HUFFMAN_CODES):
        node = 0
        for i in range(length - 1, -1, -1):
            bit = (code >> i) & 1
            if i == 0:
                children[node][bit] = ~sym
            else:
                nxt = children[node][bit]
                if nxt <= 0:
                    children.append([0, 0])
                    nxt = children[node][bit] = len(children) - 1
                node = nxt
    ones = {0: 0}  # node -> depth, for nodes reached from the root by 1 bits only
    node, depth = 0, 0
    while children[node][1] > 0:
        node = children[node][1]
        depth += 1
        ones[node] = depth
    fsm: List[Tuple[int, int]] = []
    for state in range(len(children)):
        for nibble in range(16):
            node, sym = state, -1
            for i in (3, 2, 1, 0):
                nxt = children[node][(nibble >> i) & 1]
                if nxt < 0:
                    sym, node = ~nxt, 0
                else:
                    node = nxt
            fsm.append((node, sym))
    _PAD_OK[:] = [state in ones and ones[state] <= 7 for state in range(len(children))]
    _FSM[:] = fsm


def huffman_decode(data: bytes) -> bytes:
    """Decode a Huffman-coded string; ``HpackError`` on EOS inside the string or on a
    padding that is not 0-7 one bits."""
    if not _FSM:
        _build_fsm()
    fsm = _FSM
    out = bytearray()
    state = 0
    for byte in data:
        state, sym = fsm[(state << 4) | (byte >> 4)]
        if sym >= 0:
            if sym == EOS:
                raise HpackError("EOS symbol inside a Huffman-coded string")
            out.append(sym)
        state, sym = fsm[(state << 4) | (byte & 15)]
        if sym >= 0:
            if sym == EOS:
                raise HpackError("EOS symbol inside a Huffman-coded string")
            out.append(sym)
    if not _PAD_OK[state]:
        raise HpackError("invalid Huffman padding")
    return bytes(out)


# ------------------------------------------------------------------------ integers


def encode_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """RFC 7541 section 5.1: ``value`` with an N-bit prefix; ``first`` holds the bits
    above the prefix in the first octet."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_int(data: bytes, pos: int, prefix_bits: int) -> Tuple[int, int]:
    """``(value, next position)`` of the integer at ``pos`` (RFC 7541 section 5.1)."""
    limit = (1 << prefix_bits) - 1
    try:
        value = data[pos] & limit
        pos += 1
        if value < limit:
            return value, pos
        shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, pos
            shift += 7
            if shift > 28:  # more than 2**32: no header of ours is that long
                raise HpackError("integer too large in a header block")
    except IndexError:
        raise HpackError("truncated integer in a header block") from None


# ------------------------------------------------------------------------ decoder


class HpackDecoder:
    """One connection's HPACK decoder (the server's encoder fills its dynamic table).

    ``max_table_size`` is what we allowed the server in SETTINGS_HEADER_TABLE_SIZE: a
    dynamic table size update above it is an error.
    """

    #: Decoded blocks kept (those that did not change the table).
    CACHE_SIZE = 512

    def __init__(self, max_table_size: int = DEFAULT_TABLE_SIZE,
                 max_header_list: int = 1 << 20) -> None:
        self.max_allowed = max_table_size
        self.max_size = max_table_size
        self.max_header_list = max_header_list
        self.size = 0
        self.table: Deque[Header] = deque()
        #: Changes whenever the dynamic table does (keys of the cache).
        self.version = 0
        self._cache: Dict[Tuple[int, bytes], List[Header]] = {}
        self.cache_hits = 0

    def _field(self, index: int) -> Header:
        if index <= 0:
            raise HpackError("header index 0")
        if index <= STATIC_LEN:
            return STATIC_TABLE[index - 1]
        try:
            return self.table[index - STATIC_LEN - 1]
        except IndexError:
            raise HpackError(f"header index {index} is beyond the table") from None

    def _string(self, data: bytes, pos: int) -> Tuple[bytes, int]:
        if pos >= len(data):
            raise HpackError("truncated string in a header block")
        huffman = data[pos] & 0x80
        length, pos = decode_int(data, pos, 7)
        end = pos + length
        if end > len(data):
            raise HpackError("truncated string in a header block")
        raw = bytes(data[pos:end])
        return (huffman_decode(raw) if huffman else raw), end

    def _add(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value) + ENTRY_OVERHEAD
        self.version += 1
        if size > self.max_size:  # RFC 7541 section 4.4: empties the table, no error
            self.table.clear()
            self.size = 0
            return
        self.table.appendleft((name, value))
        self.size += size
        self._evict()

    def _evict(self) -> None:
        table = self.table
        while self.size > self.max_size and table:
            name, value = table.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD

    def decode(self, block: bytes) -> List[Header]:
        """The header list of one complete header block (HEADERS + CONTINUATION
        payloads joined). The returned list may be shared: do not change it."""
        key = (self.version, block)
        hit = self._cache.get(key)
        if hit is not None:
            self.cache_hits += 1
            return hit
        version = self.version
        out: List[Header] = []
        pos = 0
        end = len(block)
        total = 0
        while pos < end:
            byte = block[pos]
            if byte & 0x80:  # indexed field
                index, pos = decode_int(block, pos, 7)
                out.append(self._field(index))
            elif byte & 0x40:  # literal with incremental indexing
                index, pos = decode_int(block, pos, 6)
                if index:
                    name = self._field(index)[0]
                else:
                    name, pos = self._string(block, pos)
                value, pos = self._string(block, pos)
                self._add(name, value)
                out.append((name, value))
            elif byte & 0x20:  # dynamic table size update
                if out:
                    raise HpackError("table size update after a header field")
                size, pos = decode_int(block, pos, 5)
                if size > self.max_allowed:
                    raise HpackError(f"table size update to {size}, above the "
                                     f"{self.max_allowed} allowed")
                self.max_size = size
                self.version += 1
                self._evict()
            else:  # literal without indexing (0000) or never indexed (0001)
                index, pos = decode_int(block, pos, 4)
                if index:
                    name = self._field(index)[0]
                else:
                    name, pos = self._string(block, pos)
                value, pos = self._string(block, pos)
                out.append((name, value))
            if out:
                total += len(out[-1][0]) + len(out[-1][1]) + ENTRY_OVERHEAD
                if total > self.max_header_list:
                    raise HpackError("header list larger than "
                                     f"{self.max_header_list} octets")
        if self.version == version:
            cache = self._cache
            if len(cache) >= self.CACHE_SIZE:
                cache.clear()
            cache[key] = out
        return out


# ------------------------------------------------------------------------ encoder

_STATIC_PAIR = {field: i + 1 for i, field in reversed(list(enumerate(STATIC_TABLE)))}
_STATIC_NAME = {name: i + 1 for i, (name, _) in reversed(list(enumerate(STATIC_TABLE)))}


def _literal(name: bytes, value: bytes, never_index: bool) -> bytes:
    first = 0x10 if never_index else 0x00
    index = _STATIC_NAME.get(name, 0)
    if index:
        out = encode_int(index, 4, first)
    else:
        out = bytes((first,)) + encode_int(len(name), 7) + name
    return out + encode_int(len(value), 7) + value


def encode_block(fields: Iterable[Tuple[bytes, bytes]],
                 sensitive: Optional[Sequence[bytes]] = None) -> bytes:
    """A header block that leaves the decoder's dynamic table as it is: exact static
    entries as indexes, everything else as literals without indexing (names in
    ``sensitive`` as "never indexed", RFC 7541 section 7.1.3), strings not Huffman
    coded. Names must already be lower case."""
    secret = set(sensitive or ())
    parts = []
    for name, value in fields:
        index = _STATIC_PAIR.get((name, value))
        if index:
            parts.append(encode_int(index, 7, 0x80))
        else:
            parts.append(_literal(name, value, name in secret))
    return b"".join(parts)
