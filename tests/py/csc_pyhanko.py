#!/usr/bin/env python3
"""pyHanko's own CSC client seals a PDF through Hanko's CSC API v1, and pyHanko's
validator judges the result (issue #12, acceptance).

Driven by server/tests/integration/csc_pyhanko.rs against a running `hanko serve --dev`.
pyHanko makes its own calls: `fetch_certs_in_csc_credential` calls `credentials/info`,
`CSCSigner` calls `signatures/signHash` and builds the PAdES CMS. This script calls
`info` and supplies only what pyHanko leaves to its user: the SAD (a `CSCAuthorizationManager` calling
`credentials/authorize` with pyHanko's `format_csc_auth_request`, binding each SAD to
the hashes about to be signed) and a `TimeStamper` over `signatures/timestamp`, so the
PAdES signature gets its signature time-stamp from Hanko's TSA through the CSC API.

The input PDF is made here with pyHanko's writer (one page of text), so no fixture is
needed. Prints one JSON object on stdout: the validation status of the signature and of
its time-stamp, that of a copy with one signed byte changed (a negative control), the
CSC calls made, and the SHA-256 of every time-stamp token received
(which the Rust side matches against the issuance log). Exits 1 with a message on any
failure.

usage: csc_pyhanko.py URL KEY_FILE CREDENTIAL ROOT_PEM OUT_PDF
"""

import asyncio
import base64
import hashlib
import json
import sys
from io import BytesIO

import aiohttp
from asn1crypto import algos, cms, pem, tsp, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers import csc_signer
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


class Calls:
    """The CSC methods called, in order (as sent on the wire), and the SHA-256 of the
    time-stamp tokens received."""

    def __init__(self):
        self.methods = []
        self.tokens = []


def tracing(calls):
    """An aiohttp trace that records the CSC method of every request sent, pyHanko's
    own included."""
    trace = aiohttp.TraceConfig()

    async def on_request_start(session, context, params):
        calls.methods.append(params.url.path.split("/csc/v1/", 1)[-1])

    trace.on_request_start.append(on_request_start)
    return trace


async def post(session, info, method, body):
    """POSTs `body` to the CSC v1 `method` with the session's bearer token."""
    async with session.post(
        info.endpoint_url(method),
        headers=info.auth_headers,
        json=body,
        raise_for_status=True,
    ) as response:
        return await response.json()


class HashBoundAuthorization(csc_signer.CSCAuthorizationManager):
    """A SAD per signHash call, bound to exactly the hashes about to be signed."""

    def __init__(self, session, info, credential_info):
        super().__init__(info, credential_info)
        self.session = session

    async def authorize_signature(self, hash_b64s):
        body = self.format_csc_auth_request(hash_b64s=hash_b64s)
        data = await post(self.session, self.csc_session_info, "credentials/authorize", body)
        return self.parse_csc_auth_response(data)


class CscTimeStamper(TimeStamper):
    """RFC 3161 time-stamps through CSC v1 `signatures/timestamp`: the request's
    imprint and nonce go as `hash`, `hashAlgo`, `nonce` (hex); the token comes back
    alone and is wrapped in a granted TimeStampResp for pyHanko's own checks (nonce,
    imprint)."""

    def __init__(self, session, info, calls):
        super().__init__(include_nonce=True)
        self.session = session
        self.info = info
        self.calls = calls

    async def async_request_tsa_response(self, req):
        imprint = req["message_imprint"]
        body = {
            "hash": base64.b64encode(imprint["hashed_message"].native).decode(),
            "hashAlgo": imprint["hash_algorithm"]["algorithm"].dotted,
            "nonce": format(req["nonce"].native, "x"),
        }
        data = await post(self.session, self.info, "signatures/timestamp", body)
        token = base64.b64decode(data["timestamp"])
        self.calls.tokens.append(hashlib.sha256(token).hexdigest())
        return tsp.TimeStampResp(
            {
                "status": {"status": "granted"},
                "time_stamp_token": cms.ContentInfo.load(token),
            }
        )


def make_pdf():
    """A one-page PDF saying what it is."""
    w = PdfFileWriter()
    font = w.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Font"),
                generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
                generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica"),
            }
        )
    )
    content = w.add_object(
        generic.StreamObject(
            stream_data=b"BT /F1 18 Tf 72 720 Td (Certificate of residence, sealed by Hanko) Tj ET"
        )
    )
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(n) for n in (0, 0, 595, 842)]
            ),
            generic.NameObject("/Contents"): content,
            generic.NameObject("/Resources"): generic.DictionaryObject(
                {
                    generic.NameObject("/Font"): generic.DictionaryObject(
                        {generic.NameObject("/F1"): font}
                    )
                }
            ),
        }
    )
    w.insert_page(page)
    out = BytesIO()
    w.write(out)
    return out.getvalue()


def load_certs(path):
    with open(path, "rb") as f:
        data = f.read()
    return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]


def status_of(s):
    return {"intact": s.intact, "valid": s.valid, "trusted": s.trusted}


async def run(url, key, credential, root_pem, out_pdf):
    calls = Calls()
    info = csc_signer.CSCServiceSessionInfo(url, credential, oauth_token=key, api_ver="v1")
    async with aiohttp.ClientSession(trace_configs=[tracing(calls)]) as session:
        service = await post(session, info, "info", {})
        cred = await csc_signer.fetch_certs_in_csc_credential(session, info)
        auth = HashBoundAuthorization(session, info, cred)
        signer = csc_signer.CSCSigner(session, auth)
        timestamper = CscTimeStamper(session, info, calls)
        pdf = make_pdf()
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name="HankoSeal",
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
        )
        signed = await signers.async_sign_pdf(
            writer, meta, signer=signer, timestamper=timestamper
        )
    signed_bytes = signed.getvalue()
    with open(out_pdf, "wb") as f:
        f.write(signed_bytes)

    roots = load_certs(root_pem)
    vc = ValidationContext(trust_roots=roots, allow_fetching=False)
    reader = PdfFileReader(BytesIO(signed_bytes))
    embedded = reader.embedded_signatures
    status = await async_validate_pdf_signature(
        embedded[0], signer_validation_context=vc, ts_validation_context=vc
    )
    ts = status.timestamp_validity
    # A negative control: the same bytes with one covered byte changed.
    tampered = signed_bytes.replace(b"of residence", b"of resident!", 1)
    assert tampered != signed_bytes
    bad = await async_validate_pdf_signature(
        PdfFileReader(BytesIO(tampered)).embedded_signatures[0],
        signer_validation_context=vc,
        ts_validation_context=vc,
    )
    return {
        "credential": credential,
        "specs": service.get("specs"),
        "methods_offered": service.get("methods"),
        "key_algo": cred.response_data["key"]["algo"],
        "auth_mode": cred.response_data.get("authMode"),
        "chain_len": 1 + len(cred.chain),
        "signer_subject": cred.signing_cert.subject.human_friendly,
        "signatures": len(embedded),
        "signature": status_of(status),
        "bottom_line": status.bottom_line,
        "coverage": status.coverage.name,
        "mechanism": status.md_algorithm + "/" + status.pkcs7_signature_mechanism,
        "timestamp": status_of(ts) if ts is not None else None,
        "tampered": status_of(bad),
        "calls": calls.methods,
        "tokens": calls.tokens,
    }


def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    url, key_file, credential, root_pem, out_pdf = sys.argv[1:]
    with open(key_file) as f:
        key = f.read().strip()
    try:
        result = asyncio.run(run(url, key, credential, root_pem, out_pdf))
    except Exception as e:  # noqa: BLE001 - report anything, the Rust side asserts
        print(f"csc_pyhanko: {type(e).__name__}: {e}", file=sys.stderr)
        cause = e.__cause__
        while cause is not None:
            print(f"  caused by {type(cause).__name__}: {cause}", file=sys.stderr)
            cause = cause.__cause__
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
