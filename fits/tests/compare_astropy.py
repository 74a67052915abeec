#!/usr/bin/env python3
"""Checks lenspipe-fits against astropy, an independent FITS reader.

Usage: compare_astropy.py TABLE.fits TABLE.arrow

TABLE.arrow is an Arrow IPC file written from what lenspipe-fits read from
TABLE.fits (all columns, all rows). Every column of the first extension is
compared: names and order, Arrow types (against astropy's dtypes), values
(exact for integers, strings and booleans; bit-exact for floats, with NaN
positions equal), nulls and fixed-size arrays.

Nulls are computed here from the raw stored bytes, as the FITS standard
defines them: TNULLn against the raw integer (before TSCAL/TZERO; astropy's
Table applies it after scaling), and logical bytes other than 'T'/'F'
(astropy reads them as False).

Exit status: 0 all equal, 1 differences (listed on stderr), 2 usage,
3 missing Python modules.
"""

import re
import sys

try:
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc
    from astropy.io import fits
except ImportError as e:  # pragma: no cover - environment problem
    print(
        f"compare_astropy.py: missing Python module ({e}); "
        "run: pip install astropy pyarrow numpy",
        file=sys.stderr,
    )
    sys.exit(3)

TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])")
# Big-endian numpy element type of each TFORM code, for the raw bytes.
RAW_TYPE = {"L": "u1", "X": "u1", "B": "u1", "I": ">i2", "J": ">i4",
            "K": ">i8", "E": ">f4", "D": ">f8", "A": "S"}
SIZE = {"L": 1, "B": 1, "A": 1, "I": 2, "J": 4, "E": 4, "K": 8, "D": 8}


def parse_tform(text):
    m = TFORM.match(text)
    if not m:
        raise ValueError(f"cannot parse TFORM {text!r}")
    return int(m.group(1) or 1), m.group(2)


def raw_table(path, header, data_offset):
    """The table's raw stored values: big-endian, unscaled, straight from the file."""
    names, formats, offsets, columns = [], [], [], []
    offset = 0
    for i in range(1, header["TFIELDS"] + 1):
        repeat, code = parse_tform(header[f"TFORM{i}"])
        width = (repeat + 7) // 8 if code == "X" else repeat * SIZE[code]
        if repeat > 0:
            if code == "A":
                fmt = f"S{repeat}"
            elif code == "X":
                fmt = ("u1", width)
            else:
                fmt = (RAW_TYPE[code], repeat) if repeat > 1 else RAW_TYPE[code]
            names.append(f"f{i}")
            formats.append(fmt)
            offsets.append(offset)
            columns.append((i, repeat, code))
        offset += width
    if offset != header["NAXIS1"]:
        raise ValueError(f"TFORMs add up to {offset} bytes, NAXIS1 is {header['NAXIS1']}")
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                      "itemsize": header["NAXIS1"]})
    with open(path, "rb") as f:
        f.seek(data_offset)
        buf = f.read(header["NAXIS1"] * header["NAXIS2"])
    return np.frombuffer(buf, dtype=dtype, count=header["NAXIS2"]), columns


def arrow_element_type(dtype):
    """The Arrow type lenspipe-fits must produce for an astropy dtype."""
    if dtype.kind in "SU":
        return pa.string()
    return pa.from_numpy_dtype(dtype.newbyteorder("="))


def is_signed_byte(code, header, index):
    """B with TZERO = -128 (and TSCAL = 1): the FITS signed-byte convention.

    astropy (8.0) returns float64 for it; lenspipe-fits returns int8, like
    the unsigned conventions for I, J and K, which astropy does map.
    """
    return (code == "B" and header.get(f"TZERO{index}") == -128
            and header.get(f"TSCAL{index}", 1) == 1)


def float_bits(values):
    width = {4: np.uint32, 8: np.uint64}[values.dtype.itemsize]
    return np.ascontiguousarray(values.astype(values.dtype.newbyteorder("="))).view(width)


class Column:
    def __init__(self, index, repeat, code, header, astropy_values, raw):
        self.name = header.get(f"TTYPE{index}", "").strip() or f"COL{index}"
        self.index, self.repeat, self.code = index, repeat, code
        self.header = header
        self.expected = np.asarray(astropy_values)
        if is_signed_byte(code, header, index):
            as_int8 = self.expected.astype(np.int8)
            if not np.array_equal(as_int8.astype(self.expected.dtype), self.expected):
                raise ValueError(f"{self.name}: astropy values {self.expected} are not signed bytes")
            self.expected = as_int8
        self.raw = raw
        self.errors = []

    def fail(self, msg):
        self.errors.append(f"column {self.name!r} (TFORM{self.index} = "
                           f"{self.header[f'TFORM{self.index}']!r}): {msg}")

    def expected_nulls(self, n, width):
        """Per element, from the raw stored bytes."""
        tnull = self.header.get(f"TNULL{self.index}")
        if self.code == "L":
            return ~np.isin(self.raw.reshape(n, width), [ord("T"), ord("F")])
        if self.code in "BIJK" and tnull is not None:
            return self.raw.reshape(n, width).astype(np.int64) == int(tnull)
        return np.zeros((n, width), dtype=bool)

    def check(self, arrow_column, n):
        array = arrow_column.combine_chunks() if isinstance(arrow_column, pa.ChunkedArray) else arrow_column
        is_list = self.code != "A" and self.repeat > 1
        element_type = arrow_element_type(self.expected.dtype)
        want_type = pa.list_(element_type, self.repeat) if is_list else element_type
        if array.type != want_type:
            # Compare list types by element and size: the child field name does not matter.
            same = (is_list and pa.types.is_fixed_size_list(array.type)
                    and array.type.value_type == element_type
                    and array.type.list_size == self.repeat)
            if not same:
                self.fail(f"Arrow type {array.type}, expected {want_type} "
                          f"(astropy dtype {self.expected.dtype}, shape {self.expected.shape})")
                return
        if is_list:
            if array.null_count:
                self.fail(f"{array.null_count} rows null at the list level; expected none")
            values = array.flatten()
        else:
            values = array
        width = 1 if self.code == "A" else self.repeat
        expected = self.expected.reshape(n, width) if self.code != "A" else self.expected.reshape(n, 1)
        if self.code != "A" and self.expected.reshape(n, -1).shape[1] != width:
            self.fail(f"astropy gives {self.expected.shape}, expected {width} values per row")
            return
        nulls = self.expected_nulls(n, width).reshape(-1)
        got_nulls = np.asarray(values.is_null(), dtype=bool)
        if not np.array_equal(got_nulls, nulls):
            self.fail(f"null positions differ: got {np.flatnonzero(got_nulls).tolist()}, "
                      f"expected {np.flatnonzero(nulls).tolist()}")
            return
        flat = expected.reshape(-1)
        valid = ~nulls
        if self.code == "A":
            # astropy strips trailing spaces, numpy trailing NULs; FITS pads with either.
            want = [s.decode("ascii") if isinstance(s, bytes) else str(s) for s in flat]
            want = [s.rstrip(" \0") for s in want]
            got = values.to_pylist()
            diffs = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
            if diffs:
                self.fail(f"strings differ (row, got, expected): {diffs[:10]}")
            return
        # Fill nulls (skipped below) so that integers stay integers in numpy.
        got = values.fill_null(False if pa.types.is_boolean(values.type) else 0)
        got = got.to_numpy(zero_copy_only=False)
        if flat.dtype.kind == "f":
            g, w = got[valid], flat[valid].astype(flat.dtype.newbyteorder("="))
            if not np.array_equal(np.isnan(g), np.isnan(w)):
                self.fail(f"NaN positions differ: got {np.flatnonzero(np.isnan(g)).tolist()}, "
                          f"expected {np.flatnonzero(np.isnan(w)).tolist()}")
                return
            finite = ~np.isnan(w)
            bad = np.flatnonzero(float_bits(g[finite]) != float_bits(w[finite]))
            if bad.size:
                self.fail(f"float bits differ at {bad[:10].tolist()}: got {g[finite][bad[:10]].tolist()}, "
                          f"expected {w[finite][bad[:10]].tolist()}")
            return
        g, w = got[valid], flat[valid]
        if not np.array_equal(g, w):
            bad = np.flatnonzero(g != w)
            self.fail(f"values differ at {bad[:10].tolist()}: got {g[bad[:10]].tolist()}, "
                      f"expected {w[bad[:10]].tolist()}")


def compare(fits_path, ipc_path):
    with fits.open(fits_path, memmap=False) as hdul:
        hdu = hdul[1]
        header = hdu.header
        if header.get("XTENSION") != "BINTABLE":
            return [f"first extension is {header.get('XTENSION')!r}, not BINTABLE"]
        data = hdu.data
        n = header["NAXIS2"]
        raw, columns = raw_table(fits_path, header, hdul.fileinfo(1)["datLoc"])
        cols = [Column(i, repeat, code, header, data.field(i - 1), raw[f"f{i}"])
                for (i, repeat, code) in columns]
    with pa.ipc.open_file(ipc_path) as reader:
        table = reader.read_all()
    errors = []
    want_names = [c.name.lower() for c in cols]
    if table.column_names != want_names:
        errors.append(f"column names differ:\n  got      {table.column_names}\n  expected {want_names}")
        return errors
    if table.num_rows != n:
        errors.append(f"{table.num_rows} rows, expected NAXIS2 = {n}")
        return errors
    if any(f.nullable is False for f in table.schema):
        errors.append("every field must be nullable")
    for c, name in zip(cols, want_names):
        c.check(table.column(name), n)
        errors.extend(c.errors)
    if not errors:
        print(f"{fits_path}: {len(cols)} columns x {n} rows match astropy")
    return errors


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    errors = compare(argv[1], argv[2])
    for e in errors:
        print(f"MISMATCH {argv[1]}: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
