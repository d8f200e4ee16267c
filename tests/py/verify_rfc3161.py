"""Verifies Hanko time-stamp responses with rfc3161-client, a third-party verifier.

Used by the hanko-tsa tests (tokens from the library), the hanko-server tests (tokens
from the running binary) and the hanko-seal tests (the signature time-stamps of B-T
seals), through hanko_client::test_support::run_rfc3161_client
(client/src/test_support.rs, feature test-support).

Input on stdin: a JSON list of cases, each
  {"resp": path, "data": path, "root": path, "tsa": path, "intermediates": [paths],
   "name": str                  (optional; default: the resp path),
   "common_name": str           (optional; default: the TSA certificate's subject),
   and either "req": path       (the DER request: its policy and nonce are expected)
   or "policy": dotted OID, "nonce": decimal string or null
   or neither                   (policy and nonce not checked: a token embedded in a
                                 seal, whose request the caller does not have)}
Prints "ok <name>" or "FAIL <name>: <reason>" per case; exits 1 if any failed.
"""
import json
import sys

from cryptography import x509
from rfc3161_client import VerifierBuilder, decode_timestamp_response
from rfc3161_client._rust import parse_timestamp_request


def read(path):
    with open(path, "rb") as f:
        return f.read()


def expected_policy_and_nonce(case):
    """(policy, nonce, whether to check them)."""
    if "req" in case:
        req = parse_timestamp_request(read(case["req"]))
        return req.policy, req.nonce, True
    if "policy" not in case:
        return None, None, False
    nonce = int(case["nonce"]) if case["nonce"] is not None else None
    return x509.ObjectIdentifier(case["policy"]), nonce, True


def check(case):
    resp = decode_timestamp_response(read(case["resp"]))
    tsa = x509.load_pem_x509_certificate(read(case["tsa"]))
    policy, nonce, checked = expected_policy_and_nonce(case)
    verifier = VerifierBuilder(
        policy_id=policy,
        nonce=nonce,
        tsa_certificate=tsa,
        intermediates=[x509.load_pem_x509_certificate(read(p)) for p in case["intermediates"]],
        roots=[x509.load_pem_x509_certificate(read(case["root"]))],
        common_name=case.get("common_name", tsa.subject.rfc4514_string()),
    ).build()
    verifier.verify_message(resp, read(case["data"]))
    if checked and resp.tst_info.nonce != nonce:
        raise ValueError(f"nonce {resp.tst_info.nonce} != {nonce}")


def main():
    failed = False
    for case in json.load(sys.stdin):
        name = case.get("name", case["resp"])
        try:
            check(case)
            print(f"ok {name}")
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            failed = True
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
