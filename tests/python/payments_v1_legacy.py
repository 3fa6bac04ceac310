"""Formance's Python SDK (payments.v1): the calls that name a connector by provider alone (the
routes Formance kept from before several connectors per provider), the config update, payment
metadata and a single account, against one DUMMY-PAY connector.

Run by tests/it/python_sdk/legacy.rs, which sets, beside sdk_harness's variables:
TRIBUTARY_DUMMYPAY_DIR, an empty directory under DUMMY-PAY's allowed roots.
"""

import json
import os

from formance_sdk_python.models import payments as m

from sdk_harness import Report, env, eventually, expect, main, sdk

CONNECTOR_NAME = "sdk-legacy"
ACCOUNT_REF = "legacy-acc-1"
PAYMENT_REF = "legacy-pay-1"
DEADLINE_S = 30


def drop_file(directory: str) -> None:
    """One account and one payment, written as a dotfile renamed into place."""
    created = "2024-03-01T10:00:00Z"
    lines = [
        {"kind": "account", "account": {
            "reference": ACCOUNT_REF, "createdAt": created, "defaultAsset": "USD/2",
            "accountName": "Legacy account", "type": "INTERNAL"}},
        {"kind": "payment", "payment": {
            "reference": PAYMENT_REF, "createdAt": created, "amount": 4200, "asset": "USD/2",
            "type": "PAY-IN", "status": "SUCCEEDED", "scheme": "other",
            "destinationAccountId": ACCOUNT_REF}},
    ]
    hidden = os.path.join(directory, ".legacy.jsonl")
    with open(hidden, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))
    os.rename(hidden, os.path.join(directory, "legacy.jsonl"))


def run(report: Report) -> None:
    directory = env("TRIBUTARY_DUMMYPAY_DIR")
    v1 = sdk(env("TRIBUTARY_WRITE_TOKEN")).payments.v1
    provider = {"connector": m.Connector.DUMMY_PAY}

    installed = v1.install_connector(request={
        **provider,
        "connector_config": m.DummyPayConfig(
            name=CONNECTOR_NAME, directory=directory, file_polling_period="1s"),
    })
    connector_id = installed.connector_response.data.connector_id
    report.result["connectorID"] = connector_id
    report.ok("install_connector", connector_id)
    ids = {**provider, "connector_id": connector_id}

    config = v1.read_connector_config(request=provider).connector_config_response.data
    expect(isinstance(config, m.DummyPayConfig) and config.name == CONNECTOR_NAME,
           f"read_connector_config: {config!r}")
    report.ok("read_connector_config", config.name)

    def read_files_task():
        cursor = v1.list_connector_tasks(request=provider).tasks_cursor.cursor
        return next((t for t in cursor.data if t.descriptor.key == "read-files"), None)

    task = eventually("the read-files task", DEADLINE_S, read_files_task)
    report.ok("list_connector_tasks", task.id)
    one = v1.get_connector_task(request={**provider, "task_id": task.id}).task_response.data
    expect(one.id == task.id, f"get_connector_task: {one!r}")
    report.ok("get_connector_task", one.id)

    updated = v1.update_connector_config_v1(request={
        **ids,
        "connector_config": m.DummyPayConfig(
            name=CONNECTOR_NAME, directory=directory, file_polling_period="2s"),
    })
    expect(updated.status_code == 204, f"update_connector_config_v1: {updated.status_code}")
    again = v1.read_connector_config_v1(request=ids).connector_config_response.data
    expect(again.file_polling_period == "2s", f"after update_connector_config_v1: {again!r}")
    report.ok("update_connector_config_v1", again.file_polling_period)

    drop_file(directory)

    def payment():
        cursor = v1.list_payments(request={"page_size": 100}).payments_cursor.cursor
        return next((p for p in cursor.data if p.reference == PAYMENT_REF), None)

    pay = eventually("the dropped payment", DEADLINE_S, payment)
    patched = v1.update_metadata(request={"payment_id": pay.id, "request_body": {"desk": "7"}})
    expect(patched.status_code == 204, f"update_metadata: {patched.status_code}")
    got = v1.get_payment(request={"payment_id": pay.id}).payment_response.data
    expect(got.metadata == {"desk": "7"}, f"metadata after update_metadata: {got.metadata!r}")
    report.result["paymentID"] = pay.id
    report.ok("update_metadata", json.dumps(got.metadata))

    account = v1.get_account_payments(
        request={"account_id": pay.destination_account_id}).account_response.data
    expect(account.reference == ACCOUNT_REF and account.connector_id == connector_id
           and account.type == m.AccountType.INTERNAL, f"get_account_payments: {account!r}")
    report.ok("get_account_payments", account.reference)

    reset = v1.reset_connector(request=provider)
    expect(reset.status_code == 204, f"reset_connector: {reset.status_code}")
    report.ok("reset_connector", "204")
    gone = v1.uninstall_connector(request=provider)
    expect(gone.status_code == 204, f"uninstall_connector: {gone.status_code}")
    report.ok("uninstall_connector", "204")


if __name__ == "__main__":
    main(run)
