"""Verifies Hanko time-stamp tokens and CAdES seals with pyHanko's generic CMS validator,
a third-party verifier (asn1crypto, pyhanko-certvalidator and pyca/cryptography: none of
Hanko's code, none of OpenSSL's CMS).

Used by hanko-server's key-type interop test (server/tests/integration/key_types.rs).

Input on stdin: a JSON list of cases, each
  {"name": str, "kind": "token" | "detached" | "enveloping",
   "file": path       (a DER TimeStampResp for "token", a DER CMS ContentInfo otherwise),
   "data": path       (the time-stamped or sealed data),
   "root": path, "intermediates": [paths]}
A token is checked with validate_tst_signed_data (signature, ESSCertID, the TSA
certificate's time-stamping EKU and chain, the imprint over the data); a seal with
async_validate_detached_cms or async_validate_cms_signature (signature, message digest,
chain; an enveloping seal's content must be the data).
Prints "ok <name>" when the signature is intact and valid and the chain trusted, else
"FAIL <name>: <reason>", per case; exits 1 if any failed.
"""
import asyncio
import hashlib
import json
import sys

from asn1crypto import cms, tsp
from pyhanko.keys import load_cert_from_pemder
from pyhanko.sign.validation.generic_cms import (
    async_validate_cms_signature,
    async_validate_detached_cms,
    validate_tst_signed_data,
)
from pyhanko_certvalidator import ValidationContext


def read(path):
    with open(path, "rb") as f:
        return f.read()


def context(case):
    return ValidationContext(
        trust_roots=[load_cert_from_pemder(case["root"])],
        other_certs=[load_cert_from_pemder(p) for p in case["intermediates"]],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def verdict(intact, valid, trusted):
    if intact and valid and trusted:
        return None
    return f"intact={intact} valid={valid} trusted={trusted}"


def check(case):
    data = read(case["data"])
    if case["kind"] == "token":
        resp = tsp.TimeStampResp.load(read(case["file"]))
        signed_data = resp["time_stamp_token"]["content"]
        status = asyncio.run(
            validate_tst_signed_data(
                signed_data,
                context(case),
                expected_tst_imprint=lambda md: hashlib.new(md, data).digest(),
            )
        )
        # The status's keyword arguments: a chain was found and nothing is wrong with it.
        trusted = (
            status.get("validation_path") is not None
            and status.get("trust_problem_indic") is None
        )
        return verdict(status["intact"], status["valid"], trusted)
    signed_data = cms.ContentInfo.load(read(case["file"]))["content"]
    if case["kind"] == "detached":
        status = asyncio.run(
            async_validate_detached_cms(
                data,
                signed_data,
                signer_validation_context=context(case),
                ts_validation_context=context(case),
            )
        )
    else:
        content = signed_data["encap_content_info"]["content"].native
        if content != data:
            return "the enveloped content is not the data"
        status = asyncio.run(
            async_validate_cms_signature(signed_data, validation_context=context(case))
        )
    return verdict(status.intact, status.valid, status.trusted)


def main():
    failed = False
    for case in json.load(sys.stdin):
        try:
            why = check(case)
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            why = f"{type(e).__name__}: {e}"
        if why is None:
            print(f"ok {case['name']}")
        else:
            failed = True
            print(f"FAIL {case['name']}: {why}".replace("\n", " "))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
