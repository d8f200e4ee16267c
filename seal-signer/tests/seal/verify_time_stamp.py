"""Verifies the signature time-stamps of B-T seals with rfc3161-client (a third-party
verifier): the token is over the given data (the SignerInfo's signature value) and
chains to the root.

Input: a JSON list of cases on stdin, each
  {"resp": path (TimeStampResp wrapping the embedded token), "data": path,
   "root": path, "tsa": path, "intermediates": [paths], "common_name": str}
Prints one line per case, "ok" or "FAIL <reason>", and exits 1 if any failed.
"""
import json
import sys

import cryptography.x509 as x509
from rfc3161_client import VerifierBuilder, decode_timestamp_response


def load(path):
    with open(path, "rb") as f:
        return f.read()


failed = False
for case in json.load(sys.stdin):
    try:
        resp = decode_timestamp_response(load(case["resp"]))
        builder = VerifierBuilder(
            tsa_certificate=x509.load_pem_x509_certificate(load(case["tsa"])),
            intermediates=[x509.load_pem_x509_certificate(load(p)) for p in case["intermediates"]],
            roots=[x509.load_pem_x509_certificate(load(case["root"]))],
            common_name=case["common_name"],
        )
        builder.build().verify_message(resp, load(case["data"]))
        print("ok")
    except Exception as e:  # noqa: BLE001
        failed = True
        print(f"FAIL {case['resp']}: {type(e).__name__}: {e}")
sys.exit(1 if failed else 0)
