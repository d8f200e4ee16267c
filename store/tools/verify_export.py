#!/usr/bin/env python3
"""Independent verifier for a Hanko issuance-log export (JSON lines).

Recomputes the chained hash of every row exactly as store/README.md defines it, using only
the Python standard library, so an auditor need not trust Hanko's own code:

    lp(x)         = u32_be(len(x)) || x
    chain_hash(n) = SHA-256(lp("hanko-log-chain-v1") || lp(chain_hash(n-1)) || lp(u64_be(seq))
                    || lp(kind) || lp(serial) || lp(object_hash) || lp(request_hash)
                    || lp(policy) || lp(client) || lp(i64_be(issued_at_ns)) || lp(node_id))

with chain_hash(0) = 32 zero bytes. Also checks that sequence numbers have no gap and that a
token, when exported, hashes (SHA-256) to object_hash.

Usage: verify_export.py [--prev HEX] [--expect-head HEX] [FILE]   (default: stdin)
  --prev         chained hash of the row before the first exported one (for partial exports)
  --expect-head  chained hash the last row must have (e.g. from an anchor or an earlier export)
Exit status 0 if intact, 1 with "BAD row N: reason" on the first bad row, 2 on usage errors.
"""
import argparse
import base64
import hashlib
import json
import struct
import sys


def lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def chain_hash(prev: bytes, row: dict) -> bytes:
    fields = [
        b"hanko-log-chain-v1",
        prev,
        struct.pack(">Q", row["seq"]),
        row["kind"].encode(),
        bytes.fromhex(row["serial"]),
        bytes.fromhex(row["object_hash"]),
        bytes.fromhex(row["request_hash"]),
        row["policy"].encode(),
        row["client"].encode(),
        struct.pack(">q", row["issued_at_ns"]),
        row["node_id"].encode(),
    ]
    return hashlib.sha256(b"".join(lp(f) for f in fields)).digest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prev", default="00" * 32)
    ap.add_argument("--expect-head")
    ap.add_argument("file", nargs="?")
    args = ap.parse_args()
    src = open(args.file, encoding="utf-8") if args.file else sys.stdin
    prev = bytes.fromhex(args.prev)
    expected_seq = None
    count = 0
    for line in src:
        if not line.strip():
            continue
        row = json.loads(line)
        seq = row["seq"]
        if expected_seq is not None and seq != expected_seq:
            print(f"BAD row {expected_seq}: missing (next row present is {seq})")
            return 1
        if chain_hash(prev, row).hex() != row["chain_hash"]:
            print(f"BAD row {seq}: chained hash does not match its contents")
            return 1
        token = row.get("token")
        if token is not None:
            if hashlib.sha256(base64.b64decode(token)).hexdigest() != row["object_hash"]:
                print(f"BAD row {seq}: token does not hash to object_hash")
                return 1
        prev = bytes.fromhex(row["chain_hash"])
        expected_seq = seq + 1
        count += 1
    if args.expect_head and prev.hex() != args.expect_head.lower():
        print(f"BAD row {(expected_seq or 1) - 1}: last chained hash is not the expected head")
        return 1
    print(f"OK {count} rows, last chained hash {prev.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
