"""Formance's Python SDK (webhooks.v1) against Tributary: a webhook config managed end to end
(insert_config, get_many_configs, test_config, change_config_secret, deactivate_config,
activate_config, delete_config), a real event delivered to a receiver started here that verifies
Formance's signature with Python's own hmac, and the deliveries API (get_deliveries,
get_delivery, get_delivery_attempts, replay_delivery).

Every answer is the SDK's typed object: a field the SDK's models refuse fails the script. Run by
tests/it/python_sdk/webhooks.rs, which sets, beside sdk_harness's variables:
TRIBUTARY_DUMMYPAY_DIR, an empty directory under DUMMY-PAY's allowed roots.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List

from formance_sdk_python.models import payments as m
from formance_sdk_python.models import webhooks as w

from sdk_harness import Report, env, error_record, eventually, expect, http_error, main, sdk

DEADLINE_S = 30
NEW_SECRET = base64.b64encode(bytes(range(24))).decode()


def verifies(secret: str, headers, body: bytes) -> bool:
    """Formance's check: HMAC-SHA256 keyed with the secret's text over `id.timestamp.body`."""
    signed = f"{headers['formance-webhook-id']}.{headers['formance-webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return any(s == f"v1,{expected}" for s in headers.get("formance-webhook-signature", "").split(" "))


class Receiver:
    """An HTTP endpoint answering 200 to everything and recording what it got."""

    def __init__(self) -> None:
        self.secrets: List[str] = []
        self.received: List[Dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append({
                    "id": self.headers.get("formance-webhook-id"),
                    "test": self.headers.get("formance-webhook-test"),
                    "body": json.loads(body),
                    "verified": [i for i, s in enumerate(receiver.secrets)
                                 if verifies(s, self.headers, body)],
                })
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


def drop_payment(directory: str, reference: str) -> None:
    """One payment in a DUMMY-PAY file renamed into place."""
    payment = {"reference": reference, "amount": 100, "asset": "EUR/2", "type": "PAY-IN",
               "status": "SUCCEEDED", "scheme": "visa", "createdAt": "2024-03-01T00:00:00Z"}
    hidden = os.path.join(directory, f".{reference}.json")
    with open(hidden, "w", encoding="utf-8") as f:
        f.write(json.dumps(payment))
    os.rename(hidden, os.path.join(directory, f"{reference}.json"))


def run(report: Report) -> None:
    client = sdk(env("TRIBUTARY_WRITE_TOKEN"))
    hooks = client.webhooks.v1
    receiver = Receiver()

    # ---- configs ---------------------------------------------------------------------------
    bad = http_error(lambda: hooks.insert_config(request=w.ConfigUser(
        endpoint="not a url", event_types=["payments.saved_payment"])))
    report.result["badInsert"] = error_record(bad)
    expect(isinstance(bad, w.ErrorResponse) and bad.data.error_code == w.ErrorsEnum.VALIDATION
           and "endpoint" in bad.data.error_message, f"insert_config refused: {bad!r}")
    report.ok("insert_config (refused)", bad.data.error_message)

    config = hooks.insert_config(request=w.ConfigUser(
        endpoint=receiver.url, event_types=["SAVED_PAYMENT"])).config_response.data
    expect(config.active and config.endpoint == receiver.url
           and config.event_types == ["payments.saved_payment"]
           and len(base64.b64decode(config.secret)) == 24, f"insert_config: {config!r}")
    receiver.secrets = [config.secret]
    report.result["configID"] = config.id
    report.ok("insert_config", config.id)

    listed = hooks.get_many_configs(request={}).configs_response.cursor
    expect(not listed.has_more and [c.id for c in listed.data] == [config.id],
           f"get_many_configs: {listed!r}")
    by_endpoint = hooks.get_many_configs(request={"endpoint": "https://elsewhere.example/x"})
    expect(by_endpoint.configs_response.cursor.data == [], f"filtered: {by_endpoint!r}")
    report.ok("get_many_configs", f"{len(listed.data)} config")

    tested = hooks.test_config(request={"id": config.id}).attempt_response.data
    expect(tested.status == "success" and tested.status_code == 200
           and tested.payload == '{"data":"test"}' and tested.config.id == config.id,
           f"test_config: {tested!r}")
    expect(receiver.received[-1]["test"] == "true" and receiver.received[-1]["verified"] == [0],
           f"the test request: {receiver.received[-1]!r}")
    report.ok("test_config", tested.status)

    # ---- a real event, delivered and replayed --------------------------------------------------
    v1 = client.payments.v1
    v1.install_connector(request={
        "connector": m.Connector.DUMMY_PAY,
        "connector_config": m.DummyPayConfig(
            name="sdk-webhooks", directory=env("TRIBUTARY_DUMMYPAY_DIR"), file_polling_period="1s"),
    })
    drop_payment(env("TRIBUTARY_DUMMYPAY_DIR"), "sdk-hook-1")
    event = eventually("the SAVED_PAYMENT webhook", DEADLINE_S, lambda: next(
        (r for r in receiver.received if r["test"] == "false"), None))
    expect(event["body"]["type"] == "payments.saved_payment" and event["verified"] == [0]
           and event["body"]["payload"]["reference"] == "sdk-hook-1", f"the event: {event!r}")

    deliveries = eventually("the delivery listed", DEADLINE_S, lambda: [
        d for d in hooks.get_deliveries(request={"config_id": config.id})
        .deliveries_response.cursor.data if d.status == w.DeliveryStatus.SUCCEEDED])
    expect(len(deliveries) == 1 and deliveries[0].id == event["id"]
           and deliveries[0].event_type == "payments.saved_payment"
           and deliveries[0].attempt_count == 1 and deliveries[0].payload is None,
           f"get_deliveries: {deliveries!r}")
    report.ok("get_deliveries", deliveries[0].id)

    delivery = hooks.get_delivery(request={"id": event["id"]}).delivery_response.data
    expect(delivery.payload is not None and json.loads(delivery.payload) == event["body"],
           f"get_delivery: {delivery!r}")
    report.ok("get_delivery", delivery.status)

    attempts = hooks.get_delivery_attempts(request={"id": event["id"]}) \
        .delivery_attempts_response.cursor.data
    expect(len(attempts) == 1 and attempts[0].status_code == 200
           and attempts[0].outcome == w.Outcome.SUCCEEDED and attempts[0].endpoint == receiver.url,
           f"get_delivery_attempts: {attempts!r}")
    report.ok("get_delivery_attempts", f"{len(attempts)} attempt")

    # ---- a new secret: the replay verifies with it only ------------------------------------------
    changed = hooks.change_config_secret(request={
        "id": config.id, "config_change_secret": {"secret": NEW_SECRET}}).config_response.data
    expect(changed.secret == NEW_SECRET, f"change_config_secret: {changed!r}")
    receiver.secrets = [config.secret, NEW_SECRET]
    report.ok("change_config_secret", "")

    replayed = hooks.replay_delivery(request={"id": event["id"], "idempotency_key": "replay-1"}) \
        .delivery_response.data
    expect(replayed.replay_generation == 1 and replayed.attempt_count == 2
           and replayed.status == w.DeliveryStatus.SUCCEEDED, f"replay_delivery: {replayed!r}")
    again = [r for r in receiver.received if r["id"] == event["id"]]
    expect(len(again) == 2 and again[1]["verified"] == [1], f"the replay: {again!r}")
    report.ok("replay_delivery", replayed.status)

    # A bulk replay of the window's failed and pending deliveries: there are none (the one
    # delivery succeeded), and the answer tells the window it used.
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    bulk = hooks.replay_deliveries(request={
        "idempotency_key": "bulk-1",
        "replay_deliveries_request": {"created_at_from": since, "config_ids": [config.id]},
    }).replay_deliveries_response.data
    expect(bulk.replayed == 0 and bulk.expedited == 0 and bulk.skipped == 0
           and not bulk.has_more and bulk.next_cursor is None and bulk.created_at_to > since,
           f"replay_deliveries: {bulk!r}")
    report.ok("replay_deliveries", f"replayed {bulk.replayed}")

    # ---- an update: a new endpoint gets the next event, signed with the current secret --------
    moved = Receiver()
    moved.secrets = [NEW_SECRET]
    hooks.update_config(request={"id": config.id, "config_user": w.ConfigUser(
        endpoint=moved.url, event_types=["payments.saved_payment"])})
    updated = hooks.get_many_configs(request={"id": config.id}).configs_response.cursor.data
    expect(len(updated) == 1 and updated[0].endpoint == moved.url
           and updated[0].secret == NEW_SECRET and updated[0].active,
           f"update_config: {updated!r}")
    drop_payment(env("TRIBUTARY_DUMMYPAY_DIR"), "sdk-hook-2")
    second = eventually("the event at the new endpoint", DEADLINE_S, lambda: next(
        (r for r in moved.received if r["test"] == "false"), None))
    expect(second["body"]["payload"]["reference"] == "sdk-hook-2" and second["verified"] == [0],
           f"after the update: {second!r}")
    expect(not any(r["body"].get("payload", {}).get("reference") == "sdk-hook-2"
                   for r in receiver.received if r["test"] == "false"),
           "the old endpoint got nothing after the update")
    report.ok("update_config", moved.url)

    # ---- switches and deletion -----------------------------------------------------------------
    off = hooks.deactivate_config(request={"id": config.id}).config_response.data
    expect(not off.active, f"deactivate_config: {off!r}")
    report.ok("deactivate_config", "")
    on = hooks.activate_config(request={"id": config.id}).config_response.data
    expect(on.active, f"activate_config: {on!r}")
    report.ok("activate_config", "")

    hooks.delete_config(request={"id": config.id})
    expect(hooks.get_many_configs(request={}).configs_response.cursor.data == [], "deleted")
    gone = http_error(lambda: hooks.delete_config(request={"id": config.id}))
    report.result["deleteAgain"] = error_record(gone)
    report.ok("delete_config", "")


if __name__ == "__main__":
    main(run)
