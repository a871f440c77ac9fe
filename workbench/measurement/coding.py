"""Entropy coding of a variant's weights: Deep Compression's last stage (Han et al., ICLR 2016), measured.

Deep Compression prunes, quantises onto a few shared levels, then Huffman-codes the levels' indices, so a
frequent index (above all the zero of a pruned weight) costs one or two bits instead of `bits`. `coded_size`
does that last stage on the real tensors of an ONNX file and counts the bytes of what it wrote.

What "coded" means here (`size_coded_bytes`), for one ONNX file:

* **The index stream.** Every integer initialiser of at most 8 bits (the int8 / uint8 weights of a realised
  QDQ file: they *are* the grid indices) and every float initialiser that the variant's quantisation record
  names (``meta["quant"]``: the ``param`` / ``initializer`` of each entry with `bits`; a matrix the exporter
  renamed, such as a Linear weight folded to ``(in, out)``, is tried on the record's settings), once `grid_indices` has
  recovered its integer levels ``k`` (``w == k * step`` per channel / group / tensor, as `Quantize` rounded it;
  checked to within 1e-3 of a step, which absorbs the float32 rounding of a batch norm folded into the
  weights). All indices of the model share one alphabet and one Huffman code, built and run by
  ``constriction.symbol.huffman`` (`huffman_encode`); the stream's bytes are the coder's output words (32-bit).
* **The codebook**: per distinct index, its value (int16) and its code length (uint8) — a canonical Huffman
  code is rebuilt from the lengths alone.
* **The scales**: one float32 step per block of every float tensor whose indices were recovered (an integer
  initialiser's scale and zero point are initialisers of their own and travel with the rest).
* **The rest**, deflated (zlib level 9, as ``size_deflated_bytes``): the ONNX file with the coded tensors'
  payloads removed — the graph, biases, norms, scales and zero points, and every float tensor with no grid
  (a pruned-only or float model's weights: deflate, not Huffman, codes those, so a float model's coded size is
  about its deflated size, not a smaller made-up figure).

`size_entropy_bytes` is the same container with the index stream at its Shannon bound
(``ceil(N * H / 8)``, ``H = Σ -p log2 p`` over the index histogram) and no codebook: no symbol code can beat
it, and Huffman is within one bit per index of it. Both are pure functions of the file (and the record), cached
by the file's path, size and modification time.

Example:
    >>> coder = huffman_encode(np.array([0, 0, 0, 0, 0, 0, 1, -1], dtype=np.int16))
    >>> coder.bits, bool((huffman_decode(coder) == [0, 0, 0, 0, 0, 0, 1, -1]).all())
    (10, True)
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.quant import QuantRecord

MAX_INDEX_BITS = 8
"""Integer initialisers up to this width are coded as indices; wider ones (int32 biases, int64 shapes) are not."""
GRID_TOLERANCE = 1e-3
"""How far (in grid steps) a float weight may sit from ``k * step`` and still count as on the grid."""


@dataclass(frozen=True)
class HuffmanStream:
    """A Huffman-coded sequence of integer indices (`huffman_encode`): enough to decode it (`huffman_decode`)."""

    values: np.ndarray  # the alphabet: distinct index values, sorted (int16)
    counts: np.ndarray  # how often each occurs (the code was built from these)
    words: np.ndarray  # the coder's output (uint32 words)
    bits: int  # information-carrying bits of `words`
    lengths: np.ndarray  # code length of each alphabet value (bits)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def stream_bytes(self) -> int:
        """Bytes of the coded indices as the coder wrote them (whole 32-bit words)."""
        return int(self.words.nbytes)

    @property
    def codebook_bytes(self) -> int:
        """Bytes of the serialised code book: each value as int16 and its code length as uint8."""
        return len(self.values.astype(np.int16).tobytes() + self.lengths.astype(np.uint8).tobytes())

    @property
    def entropy_bits(self) -> float:
        """Shannon bound of the stream: ``N * Σ -p log2 p`` over the index histogram."""
        p = self.counts / max(self.n, 1)
        return float(self.n * -(p * np.log2(p)).sum())


def _trees(counts: np.ndarray) -> tuple[Any, Any, np.ndarray]:
    import constriction

    # A one-symbol alphabet has no Huffman tree; a never-used second symbol gives that symbol a 1-bit code.
    probs = counts.astype(np.float64) if len(counts) > 1 else np.array([float(counts[0]), 0.0])
    huffman = constriction.symbol.huffman
    return huffman.EncoderHuffmanTree(probs), huffman.DecoderHuffmanTree(probs), probs


def huffman_encode(indices: np.ndarray) -> HuffmanStream:
    """Huffman-code integer indices with ``constriction`` (its tree, its coder; one symbol per index).

    The only Python loop is the coder's per-symbol call (constriction encodes one symbol at a time, ~0.15 µs
    each here); the histogram and the mapping to alphabet positions are numpy.
    """
    import constriction

    values, inverse, counts = np.unique(np.asarray(indices).ravel(), return_inverse=True, return_counts=True)
    if not len(values):
        return HuffmanStream(values.astype(np.int16), counts, np.zeros(0, np.uint32), 0, np.zeros(0, np.uint8))
    encoder_tree, _, _ = _trees(counts)
    queue = constriction.symbol.QueueEncoder()
    encode = queue.encode_symbol
    for symbol in inverse.tolist():
        encode(symbol, encoder_tree)
    words, bits = queue.get_compressed_and_bitrate()
    lengths = []
    for symbol in range(len(values)):  # each code word's length, read from the same tree
        one = constriction.symbol.QueueEncoder()
        one.encode_symbol(symbol, encoder_tree)
        lengths.append(one.get_compressed_and_bitrate()[1])
    return HuffmanStream(values.astype(np.int16), counts, words, int(bits), np.array(lengths, np.uint8))


def huffman_decode(stream: HuffmanStream) -> np.ndarray:
    """The indices back from a `HuffmanStream` (what a device would run before dequantising)."""
    import constriction

    if not len(stream.values):
        return np.zeros(0, np.int16)
    _, decoder_tree, _ = _trees(stream.counts)
    decoder = constriction.symbol.QueueDecoder(stream.words)
    symbols = np.fromiter((decoder.decode_symbol(decoder_tree) for _ in range(stream.n)), np.int64, stream.n)
    return stream.values[symbols]


def grid_indices(w: np.ndarray, bits: int, *, granularity: str | None = "channel", group_size: int | None = None,
                 axis: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
    """The integer levels of a weight that sits on a b-bit grid: ``(k, steps)`` with ``w ≈ k * step`` per block.

    Blocks are those `Quantize` used (one per index of `axis` for ``"channel"``, `group_size` consecutive weights
    of a channel for ``"group"``, the whole tensor for ``"tensor"``). A symmetric grid's step is
    ``max|w| / (2**(bits-1) - 1)``; a block where that fails (asymmetric: a zero point) tries
    ``max|w| / m`` for ``m = 2**bits - 1`` down to 1. `k` is flat, in the order of `w` with `axis` moved first
    (padding of the last group dropped); `None` when some block is on no such grid (then it is no index).

    Example:
        >>> w = np.array([[0.0, 1.0, -1.0, 1.0], [0.2, 0.0, 0.0, -0.2]], np.float32)
        >>> k, steps = grid_indices(w, 2)
        >>> k.tolist(), steps.tolist()
        ([0, 1, -1, 1, 1, 0, 0, -1], [1.0, 0.20000000298023224])
    """
    x = np.moveaxis(np.asarray(w, np.float64), axis, 0) if np.ndim(w) else np.asarray(w, np.float64).reshape(1)
    rows = x.reshape(1, -1) if granularity == "tensor" else x.reshape(x.shape[0], -1)
    width = rows.shape[1]
    if granularity == "group" and group_size:
        rows = np.pad(rows, ((0, 0), (0, (-width) % group_size))).reshape(-1, group_size)
    levels = 2**bits
    if len(np.unique(rows[0])) > levels or len(np.unique(rows[-1])) > levels:  # cheap rejection of a float tensor
        return None
    absmax = np.abs(rows).max(axis=1)
    steps = np.zeros(len(rows), np.float32)
    k = np.zeros(rows.shape, np.int32)
    todo = absmax > 0
    steps[~todo] = 1.0
    for m in [2 ** (bits - 1) - 1, *range(2**bits - 1, 0, -1)]:
        if not todo.any():
            break
        step = (absmax[todo] / m).astype(np.float32).astype(np.float64)[:, None]
        ki = np.rint(rows[todo] / step)
        ok = (np.abs(rows[todo] - ki * step) <= GRID_TOLERANCE * step).all(axis=1) & (np.abs(ki).max(axis=1) <= m)
        where = np.flatnonzero(todo)[ok]
        k[where], steps[where] = ki[ok], step[ok, 0]
        todo[where] = False
    if todo.any():
        return None
    if granularity == "group" and group_size:
        k = k.reshape(x.shape[0], -1)[:, :width]
    return k.ravel(), steps


@dataclass(frozen=True)
class CodedSize:
    """The bytes of a Huffman-coded (Deep Compression) container of one ONNX file; see the module docstring."""

    stream_bytes: int  # the Huffman-coded indices
    codebook_bytes: int  # values + code lengths
    scale_bytes: int  # float32 steps of the float tensors whose indices were recovered
    rest_bytes: int  # the file without the coded payloads, deflated
    indices: int  # how many indices were coded
    entropy_bits: float  # Shannon bound of the index stream
    coded_tensors: tuple[str, ...] = ()  # initialisers coded as indices

    @property
    def total(self) -> int:
        """``size_coded_bytes``."""
        return self.stream_bytes + self.codebook_bytes + self.scale_bytes + self.rest_bytes

    @property
    def entropy_total(self) -> int:
        """``size_entropy_bytes``: the index stream at its Shannon bound, no codebook, the rest as in `total`."""
        return math.ceil(self.entropy_bits / 8) + self.scale_bytes + self.rest_bytes


def _graded(record: QuantRecord) -> dict[str, Any]:
    """Initialiser name -> the record's entry, for every integer-quantised entry."""
    out = {}
    for _, e in record.integer_layers.items():
        for name in (e.param, e.initializer):
            if name:
                out[name] = e
    return out


def _on_grid(array: np.ndarray, entry: Any, settings: dict[tuple, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """The grid of a float initialiser: the record's entry of that name (on its axis), else — an exporter that
    folded a transpose into a nameless constant (``val_57``: a Linear's weight as ``(in, out)``) — any of the
    record's settings along the first or last axis of a matrix or larger (checked on the values, never assumed)."""
    if entry is not None:
        return grid_indices(array, entry.bits, granularity=entry.granularity, group_size=entry.group_size,
                            axis=entry.axis or 0)
    if array.ndim < 2:
        return None
    for bits, granularity, group_size in settings:
        for axis in (0, array.ndim - 1):
            grid = grid_indices(array, bits, granularity=granularity, group_size=group_size, axis=axis)
            if grid is not None:
                return grid
    return None


def index_arrays(path: str | Path, record: QuantRecord | None = None) -> tuple[dict[str, np.ndarray], dict[str, int],
                                                                                Any]:
    """The indices of an ONNX file (see the module docstring): ``({initialiser: indices}, {initialiser: scale
    bytes}, the model proto with those payloads removed)``."""
    import onnx
    from onnx import numpy_helper

    model: Any = onnx.load(str(path))
    graded = _graded(record or QuantRecord())
    settings = {(e.bits, e.granularity, e.group_size): e for e in graded.values()}
    indices: dict[str, np.ndarray] = {}
    scales: dict[str, int] = {}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        found = None
        if array.dtype.kind in "iu" and array.dtype.itemsize * 8 <= MAX_INDEX_BITS and array.size:
            found = array.ravel().astype(np.int16), 0
        elif array.dtype.kind == "f" and array.size:
            grid = _on_grid(array, graded.get(init.name), settings)
            if grid is not None:
                found = grid[0].astype(np.int16), grid[1].nbytes
        if found is None:
            continue
        indices[init.name], scales[init.name] = found
        name, dims, dtype = init.name, list(init.dims), init.data_type
        init.Clear()  # the payload travels coded; the name, type and shape stay in the graph
        init.name, init.data_type = name, dtype
        init.dims.extend(dims)
    return indices, scales, model


@functools.lru_cache(maxsize=64)
def _coded(path: str, _size: int, _mtime: int, record_text: str) -> CodedSize:
    import json

    record = QuantRecord.from_dict(json.loads(record_text)) if record_text else QuantRecord()
    indices, scales, model = index_arrays(path, record)
    if not indices:  # nothing to code: the rest is the whole file, deflated as `size_deflated_bytes` did it
        from workbench.measurement.size import deflated_size

        return CodedSize(0, 0, 0, deflated_size(Path(path)), 0, 0.0)
    rest = len(zlib.compress(model.SerializeToString(), 9))
    stream = huffman_encode(np.concatenate(list(indices.values())))
    return CodedSize(stream.stream_bytes, stream.codebook_bytes, sum(scales.values()), rest, stream.n,
                     stream.entropy_bits, tuple(indices))


def coded_size(path: str | Path, record: QuantRecord | None = None) -> CodedSize:
    """Huffman-coded size of an ONNX file (Deep Compression's container; the module docstring says what counts).

    Args:
        path: an ``.onnx`` file.
        record: the variant's quantisation record (`workbench.core.quant.quant_record`): which float
            initialisers sit on which grid. Without it only integer initialisers are coded.

    Example:
        >>> v = workbench.compress(task.model, Prune(0.5), Quantize(4))
        >>> from workbench.formats.convert import to_onnx
        >>> from workbench.core.quant import quant_record
        >>> c = coded_size(to_onnx(v), quant_record(v))
        >>> from workbench.measurement.size import deflated_size
        >>> bool(c.entropy_total <= c.total < deflated_size(to_onnx(v))), c.indices > 0
        (True, True)
    """
    import json

    p = Path(path)
    st = p.stat()
    text = json.dumps(record.to_dict(), sort_keys=True) if record else ""
    return _coded(str(p.resolve()), st.st_size, st.st_mtime_ns, text)


def variant_coded_size(handle: Any, path: str | Path | None) -> CodedSize | None:
    """`coded_size` of what `measure` measured: the artefact at `path` when it is ONNX, else the variant's own
    ONNX export (`workbench.formats.convert.to_onnx`, cached: same weights and graph as any runtime's file).

    `None` for a model with neither (a TFLite or ExecuTorch file loaded as such): no ONNX graph to code.
    """
    from workbench.core.quant import quant_record

    record = quant_record(handle)
    if path is not None and Path(path).suffix == ".onnx" and Path(path).is_file():
        return coded_size(path, record)
    if getattr(handle, "framework", None) == "onnx" and handle.path is not None:
        return coded_size(handle.path, record)
    if getattr(handle, "framework", None) == "torch":
        from workbench.formats.convert import to_onnx

        return coded_size(to_onnx(handle), record)
    return None


__all__ = ["CodedSize", "HuffmanStream", "coded_size", "grid_indices", "huffman_decode", "huffman_encode",
           "index_arrays", "variant_coded_size"]
