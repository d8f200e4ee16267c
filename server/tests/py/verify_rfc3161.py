"""Verifies time-stamp responses of a running Hanko server with rfc3161-client.

Input on stdin: a JSON list of cases
  {"name": str, "resp": path, "data": path, "root": path, "intermediate": path,
   "tsa": path, "policy": dotted OID, "nonce": decimal string or null}
Prints "ok <name>" or "FAIL <name>: <reason>" per case; exits 1 if any failed.
"""
import json
import sys

from cryptography import x509
from rfc3161_client import VerifierBuilder, decode_timestamp_response


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check(case):
    resp = decode_timestamp_response(read(case["resp"]))
    tsa = x509.load_pem_x509_certificate(read(case["tsa"]))
    nonce = int(case["nonce"]) if case["nonce"] is not None else None
    verifier = VerifierBuilder(
        policy_id=x509.ObjectIdentifier(case["policy"]),
        nonce=nonce,
        tsa_certificate=tsa,
        intermediates=[x509.load_pem_x509_certificate(read(case["intermediate"]))],
        roots=[x509.load_pem_x509_certificate(read(case["root"]))],
        common_name=tsa.subject.rfc4514_string(),
    ).build()
    verifier.verify_message(resp, read(case["data"]))
    if resp.tst_info.nonce != nonce:
        raise ValueError(f"nonce {resp.tst_info.nonce} != {nonce}")


failed = False
for case in json.load(sys.stdin):
    try:
        check(case)
        print(f"ok {case['name']}")
    except Exception as e:  # noqa: BLE001 - report every failure, keep going
        failed = True
        print(f"FAIL {case['name']}: {type(e).__name__}: {e}")
sys.exit(1 if failed else 0)
