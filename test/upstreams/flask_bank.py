"""A Flask application with the demo bank's routes, for the gateway's
rule-matching tests (internal/app/gateway_upstream_test.go).

Every handler answers with the name of the handler that ran in the
X-Handler header, and records it with the user the gateway named and the
authentication contexts of the request, which GET /_ran lists. It prints
the port it listens on (127.0.0.1, chosen by the system) and serves until
its standard input closes.
"""

import base64
import json
import sys
import threading

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

app = Flask(__name__)
ran = []
lock = threading.Lock()


def acrs():
    """The acrs claim of the gateway's assertion. Not verified: the test
    only asks what the gateway let through, not whether to trust it."""
    token = request.headers.get("X-Stepgate-Assertion", "")
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims.get("acrs") or []
    except (IndexError, ValueError):
        return []


def answer(handler, status=200):
    with lock:
        ran.append({"handler": handler, "method": request.method, "path": request.path,
                    "user": request.headers.get("X-Stepgate-User", ""), "acrs": acrs()})
    resp = jsonify(handler=handler)
    resp.status_code = status
    resp.headers["X-Handler"] = handler
    return resp


@app.post("/transfers")
def transfer():
    return answer("transfer")


@app.get("/admin/")
def admin():
    return answer("admin")


@app.get("/customers/")
def customers():
    return answer("customers")


@app.get("/accounts")
def accounts():
    return answer("accounts")


@app.get("/_ran")
def list_ran():
    with lock:
        return jsonify(ran)


@app.errorhandler(404)
def not_found(_):
    return answer("none", 404)


@app.errorhandler(405)
def not_allowed(_):
    return answer("none", 405)


def main():
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
