"""Verifies Hanko tokens with rfc3161-client (a third-party verifier).

Input: a JSON list of cases on stdin, each
  {"resp": path, "req": path, "data": path, "root": path, "tsa": path,
   "intermediates": [paths], "common_name": str}
Prints one line per case, "ok" or "FAIL <reason>", and exits 1 if any failed.
"""
import json
import sys

import cryptography.x509 as x509
import rfc3161_client
from rfc3161_client import VerifierBuilder, decode_timestamp_response
from rfc3161_client._rust import parse_timestamp_request


def load(path):
    with open(path, "rb") as f:
        return f.read()


failed = False
for case in json.load(sys.stdin):
    try:
        resp = decode_timestamp_response(load(case["resp"]))
        req = parse_timestamp_request(load(case["req"]))
        builder = VerifierBuilder(
            policy_id=req.policy,
            nonce=req.nonce,
            tsa_certificate=x509.load_pem_x509_certificate(load(case["tsa"])),
            intermediates=[x509.load_pem_x509_certificate(load(p)) for p in case["intermediates"]],
            roots=[x509.load_pem_x509_certificate(load(case["root"]))],
            common_name=case["common_name"],
        )
        builder.build().verify_message(resp, load(case["data"]))
        if req.nonce is not None and resp.tst_info.nonce != req.nonce:
            raise Exception("nonce not echoed")
        print("ok")
    except Exception as e:  # noqa: BLE001
        failed = True
        print(f"FAIL {case['resp']}: {type(e).__name__}: {e}")
sys.exit(1 if failed else 0)
