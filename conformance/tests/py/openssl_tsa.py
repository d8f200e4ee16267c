#!/usr/bin/env python3
"""A reference TSA for the conformance tests: `openssl ts -reply` behind HTTP.

Usage: openssl_tsa.py DIR [SECTION]  (DIR holds tsa.cnf and the files it names;
SECTION is the [tsa] section to sign with, `openssl ts -reply -section`)

RFC 3161 section 3.4 transport only: POST of application/timestamp-query answered with
whatever `openssl ts -reply` makes of the body, as application/timestamp-reply; 415 for
another media type, 405 for other methods. Everything a token is made of is OpenSSL's,
so the test can assert how `hanko-conformance` judges it. Prints the port it listens on,
then serves until killed.
"""

import http.server
import os
import subprocess
import sys
import tempfile


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer(405, "text/plain", b"POST only\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/timestamp-query":
            self._answer(415, "text/plain", b"application/timestamp-query only\n")
            return
        with tempfile.TemporaryDirectory() as tmp:
            query = os.path.join(tmp, "q.tsq")
            reply = os.path.join(tmp, "r.tsr")
            with open(query, "wb") as f:
                f.write(body)
            run = subprocess.run(
                ["openssl", "ts", "-reply", "-config", "tsa.cnf", "-section", SECTION,
                 "-queryfile", query, "-out", reply],
                capture_output=True,
            )
            if run.returncode != 0 or not os.path.exists(reply):
                self._answer(500, "text/plain", run.stderr)
                return
            with open(reply, "rb") as f:
                self._answer(200, "application/timestamp-reply", f.read())


SECTION = "tsa_config1"


def main():
    global SECTION
    os.chdir(sys.argv[1])
    if len(sys.argv) > 2:
        SECTION = sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
