"""Shared by the Formance Python SDK test scripts (run by tests/it/python_sdk, one script per
Rust test): the service's address and tokens from the environment, SDK clients that hold a token
the way a Formance SDK user passes a static one, polling with a deadline, and the report.

The Rust side reads the exit status (0 only when every check passed) and the last line of
stdout, `RESULT {json}`: what the script saw (ids, the SDK's exception types and HTTP statuses),
for the Rust test to assert on and cross-check against the database. Other lines are for people.

To run a script by hand, start `tributary serve` with two static tokens and set
TRIBUTARY_URL (e.g. http://127.0.0.1:8080), TRIBUTARY_READ_TOKEN, TRIBUTARY_WRITE_TOKEN and the
script's own variables (named in its header); use the venv the Rust test built under
target/python-venv/.
"""

import json
import os
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, TypeVar

import httpx
from formance_sdk_python import SDK
from formance_sdk_python.models.errors import SDKBaseError

T = TypeVar("T")

# Every SDK call gives up after this long, so a stuck service fails the script, never hangs it.
CALL_TIMEOUT_MS = 10_000


class CheckFailed(Exception):
    """A check of what the SDK returned did not hold."""


def env(name: str) -> str:
    """A variable the Rust test sets; a clear failure when it is missing."""
    value = os.environ.get(name)
    if not value:
        raise CheckFailed(f"{name} is not set (tests/it/python_sdk sets it)")
    return value


def sdk(token: Optional[str]) -> SDK:
    """An SDK client sending `token` as a static bearer token, or no token at all.

    A static token goes through an httpx client with a default `Authorization` header and no
    `security`: the SDK's own `security` is OAuth2 client credentials only, and with none set it
    leaves the header alone (docs/api.md#clients)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx.Client(headers=headers, follow_redirects=True)
    return SDK(server_url=env("TRIBUTARY_URL"), client=client, timeout_ms=CALL_TIMEOUT_MS)


def expect(condition: bool, message: str) -> None:
    """Fails the script with `message` unless `condition` (asserts vanish under `python -O`)."""
    if not condition:
        raise CheckFailed(message)


def eventually(what: str, timeout_s: float, check: Callable[[], Optional[T]]) -> T:
    """Polls `check` until it returns something truthy, which it returns; fails after
    `timeout_s` naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def http_error(call: Callable[[], Any]) -> SDKBaseError:
    """Runs an SDK call that must fail with an HTTP error; the SDK's exception (every one it
    raises for an HTTP answer derives from SDKBaseError, which carries `status_code`)."""
    try:
        value = call()
    except SDKBaseError as e:
        return e
    raise CheckFailed(f"expected an HTTP error, the SDK returned {value!r}")


def error_record(error: SDKBaseError) -> Dict[str, Any]:
    """What the Rust test sees of an SDK exception: its type, the HTTP status, our errorCode."""
    try:
        code = json.loads(error.body).get("errorCode")
    except (ValueError, AttributeError):
        code = None
    return {
        "exception": type(error).__name__,
        "status": error.status_code,
        "errorCode": code,
        "wwwAuthenticate": error.headers.get("www-authenticate"),
    }


class Report:
    """The calls made and what they returned, printed as they happen and as `RESULT` at the end."""

    def __init__(self) -> None:
        self.calls: List[str] = []
        self.result: Dict[str, Any] = {}

    def ok(self, call: str, detail: str = "") -> None:
        """Records an SDK call whose answer passed its checks."""
        self.calls.append(call)
        print(f"ok {call}: {detail}", flush=True)

    def finish(self) -> None:
        print("RESULT " + json.dumps({**self.result, "calls": self.calls}, default=str), flush=True)


def main(body: Callable[[Report], None]) -> None:
    """Runs a script's checks: exit 0 and a RESULT line, or exit 1 with the traceback."""
    report = Report()
    try:
        body(report)
    except Exception:  # every failure, the SDK's included, fails the script with its traceback
        traceback.print_exc()
        print(f"FAILED after {len(report.calls)} calls: {report.calls}", file=sys.stderr, flush=True)
        sys.exit(1)
    report.finish()
