"""Compares two Parquet output folders row by row, read with pyarrow (an
independent reader): rows are matched on the key columns, and every other
column (except the ignored ones) must hold the same value in both.

    compare_tables.py A B --keys k1,k2 [--ignore c1,c2]

Prints JSON: row counts, columns, duplicate keys, and up to 20 differences
with the column and both values. Exit 0 whatever it finds: the caller asserts.
"""
import argparse
import json
import math

from lenspipe_output import dataset


def rows(folder, keys):
    table = dataset(folder).to_table()
    data = table.to_pylist()
    by_key = {}
    duplicates = 0
    for row in data:
        key = tuple(row[k] for k in keys)
        if key in by_key:
            duplicates += 1
        by_key[key] = row
    return table.column_names, by_key, len(data), duplicates


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--keys", required=True)
    parser.add_argument("--ignore", default="")
    args = parser.parse_args()
    keys = args.keys.split(",")
    ignore = set(filter(None, args.ignore.split(",")))
    cols_a, rows_a, n_a, dup_a = rows(args.a, keys)
    cols_b, rows_b, n_b, dup_b = rows(args.b, keys)
    compared = [c for c in cols_a if c not in ignore and c not in keys]
    differences = []
    differing_rows = 0
    for key in sorted(set(rows_a) | set(rows_b), key=repr):
        ra, rb = rows_a.get(key), rows_b.get(key)
        if ra is None or rb is None:
            differing_rows += 1
            if len(differences) < 20:
                differences.append({"key": repr(key), "missing_in": "a" if ra is None else "b"})
            continue
        bad = [c for c in compared if not same(ra.get(c), rb.get(c))]
        if bad:
            differing_rows += 1
            if len(differences) < 20:
                differences.append({"key": repr(key), "columns": bad,
                                    "a": [repr(ra.get(c)) for c in bad], "b": [repr(rb.get(c)) for c in bad]})
    json.dump({
        "rows_a": n_a, "rows_b": n_b, "duplicate_keys_a": dup_a, "duplicate_keys_b": dup_b,
        "columns_a": cols_a, "columns_b": cols_b, "compared_columns": compared,
        "differing_rows": differing_rows, "differences": differences,
    }, __import__("sys").stdout)


if __name__ == "__main__":
    main()
