"""Validates the signatures of a PDF with pyHanko, a third-party PAdES validator.

Used by the hanko-server PAdES tests (server/tests/integration/seal_pdf.rs): every
seal of `POST /api/v1/seal/pdf` goes through it.

    python3 verify_pades.py FILE.pdf ROOT.pem [ROOT.pem ...]

Each ROOT.pem is a trust anchor (the dev root; for a file signed before Hanko, also
the earlier signer's certificate). Prints one JSON object per signature, in file order:
  {"field", "subfilter", "intact", "valid", "trusted", "bottom_line", "coverage",
   "modification_level", "docmdp_ok", "timestamp": null | {"intact", "valid",
   "trusted"}, "signing_time_attr": bool (a CMS signing-time attribute is present),
   "signing_cert_v2": bool, "m": the /M string, "strict": bool}
A hybrid-reference file (a cross-reference table with /XRefStm) is read in pyHanko's
non-strict mode, and says so ("strict": false): in strict mode pyHanko refuses to
validate any signature of such a file, by policy (a PDF 1.4 reader and a PDF 1.5
reader may see different objects), whoever signed it.
The caller judges; this script only reports. Exits 2 when the file does not open.
"""
import json
import sys

from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def main():
    path, roots = sys.argv[1], sys.argv[2:]
    anchors = [load_cert_from_pemder(r) for r in roots]

    def context():
        return ValidationContext(
            trust_roots=anchors, allow_fetching=False, revocation_mode="soft-fail"
        )

    try:
        f = open(path, "rb")
        reader = PdfFileReader(f)
        if reader.xrefs.hybrid_xrefs_present:
            reader = PdfFileReader(f, strict=False)
        sigs = reader.embedded_signatures
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        print(f"cannot open {path}: {e}", file=sys.stderr)
        sys.exit(2)
    for sig in sigs:
        status = validate_pdf_signature(
            sig, signer_validation_context=context(), ts_validation_context=context()
        )
        ts = status.timestamp_validity
        signer_info = sig.signer_info
        signed_attrs = signer_info["signed_attrs"]
        types = {a["type"].native for a in signed_attrs}
        sig_obj = sig.sig_object
        print(
            json.dumps(
                {
                    "field": sig.field_name,
                    "subfilter": str(sig_obj.get("/SubFilter")),
                    "intact": status.intact,
                    "valid": status.valid,
                    "trusted": status.trusted,
                    "bottom_line": status.bottom_line,
                    "coverage": status.coverage.name if status.coverage else None,
                    "modification_level": status.modification_level.name
                    if status.modification_level is not None
                    else None,
                    "docmdp_ok": status.docmdp_ok,
                    "timestamp": None
                    if ts is None
                    else {"intact": ts.intact, "valid": ts.valid, "trusted": ts.trusted},
                    "signing_time_attr": "signing_time" in types,
                    "signing_cert_v2": "signing_certificate_v2" in types,
                    "m": str(sig_obj.get("/M")),
                    "strict": reader.strict,
                }
            )
        )


if __name__ == "__main__":
    main()
