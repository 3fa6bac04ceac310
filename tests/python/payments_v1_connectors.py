"""Formance's Python SDK (payments.v1) against Tributary: a DUMMY-PAY connector installed,
inspected, fed a file, read back, reset and uninstalled with a write token; reads with a read
token, its mutating calls refused (403); a read with no token refused (401).

Every answer is the SDK's typed object (pydantic models): a field of ours whose name, type or
enum value the SDK does not accept fails the call with ResponseValidationError, and so the
script. Run by tests/it/python_sdk/connectors.rs, which sets, beside sdk_harness's variables:
TRIBUTARY_DUMMYPAY_DIR, an empty directory under DUMMY-PAY's allowed roots.
"""

import json
import os

from formance_sdk_python.models import payments as m

from sdk_harness import Report, env, error_record, eventually, expect, http_error, main, sdk

CONNECTOR_NAME = "sdk-dummypay"
# Beyond 64 bits: the SDK must read amounts as exact integers.
AMOUNT = 123456789012345678901234567890
BALANCE = -98765432109876543210
ACCOUNT_REF = "sdk-acc-1"
PAYMENT_REF = "sdk-pay-1"
DEADLINE_S = 30


def drop_file(directory: str) -> None:
    """Writes one JSON Lines file (an account, a payment, a balance) the way writers should:
    a dotfile renamed into place (docs/dummypay.md)."""
    created = "2024-03-01T10:00:00Z"
    lines = [
        {"kind": "account", "account": {
            "reference": ACCOUNT_REF, "createdAt": created, "defaultAsset": "EUR/2",
            "accountName": "SDK account", "type": "INTERNAL", "metadata": {"team": "sdk"}}},
        {"kind": "payment", "payment": {
            "reference": PAYMENT_REF, "createdAt": created, "amount": AMOUNT, "asset": "EUR/2",
            "type": "PAY-IN", "status": "SUCCEEDED", "scheme": "sepa credit",
            "destinationAccountId": ACCOUNT_REF, "metadata": {"order": "42"}}},
        {"kind": "balance", "balance": {
            "accountReference": ACCOUNT_REF, "asset": "EUR/2", "balance": BALANCE,
            "createdAt": created}},
    ]
    hidden = os.path.join(directory, ".sdk-batch.jsonl")
    with open(hidden, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))
    os.rename(hidden, os.path.join(directory, "sdk-batch.jsonl"))


def connectors_named(v1, name: str):
    listed = v1.list_all_connectors().connectors_response
    expect(listed is not None, "list_all_connectors: no body")
    return [c for c in listed.data if c.name == name]


def payment_by_reference(v1, reference: str):
    cursor = v1.list_payments(request={"page_size": 100}).payments_cursor.cursor
    return next((p for p in cursor.data if p.reference == reference), None)


def run(report: Report) -> None:
    directory = env("TRIBUTARY_DUMMYPAY_DIR")
    writer = sdk(env("TRIBUTARY_WRITE_TOKEN")).payments.v1
    reader = sdk(env("TRIBUTARY_READ_TOKEN")).payments.v1
    anonymous = sdk(None).payments.v1

    # ---- the write token: install and inspect -------------------------------------------
    info = writer.get_server_info_payments().server_info
    expect(bool(info.version), f"get_server_info_payments: no version in {info!r}")
    report.ok("get_server_info_payments", f"version {info.version}")

    configs = writer.list_configs_available_connectors().connectors_configs_response.data
    expect("DUMMY-PAY" in configs, f"list_configs_available_connectors: {sorted(configs)}")
    fields = configs["DUMMY-PAY"]
    expect(fields["directory"].required and fields["directory"].data_type == "string",
           f"DUMMY-PAY's directory field: {fields['directory']!r}")
    # Formance writes every default as a string; the SDK refuses a number.
    expect(fields["filePollingPeriod"].default_value == "10s"
           and fields["numberOfPaymentsPreGenerated"].default_value == "0",
           f"DUMMY-PAY's defaults: {fields!r}")
    report.ok("list_configs_available_connectors", f"DUMMY-PAY fields {sorted(fields)}")

    installed = writer.install_connector(request={
        "connector": m.Connector.DUMMY_PAY,
        "connector_config": m.DummyPayConfig(
            name=CONNECTOR_NAME, directory=directory, file_polling_period="1s"),
    })
    expect(installed.status_code == 201, f"install_connector: status {installed.status_code}")
    connector_id = installed.connector_response.data.connector_id
    report.result["connectorID"] = connector_id
    report.ok("install_connector", connector_id)

    [listed] = connectors_named(writer, CONNECTOR_NAME)
    expect(listed.connector_id == connector_id and listed.provider == m.Connector.DUMMY_PAY
           and listed.enabled is True, f"list_all_connectors: {listed!r}")
    report.ok("list_all_connectors", f"{listed.provider.value} {listed.name} enabled")

    ids = {"connector": m.Connector.DUMMY_PAY, "connector_id": connector_id}
    config = writer.read_connector_config_v1(request=ids).connector_config_response.data
    expect(isinstance(config, m.DummyPayConfig), f"read_connector_config_v1: {config!r}")
    expect(config.name == CONNECTOR_NAME and config.directory == directory
           and config.file_polling_period == "1s" and config.provider == "Dummypay",
           f"read_connector_config_v1: {config!r}")
    report.ok("read_connector_config_v1", f"{type(config).__name__} {config.directory}")

    def read_files_task():
        cursor = writer.list_connector_tasks_v1(request=ids).tasks_cursor.cursor
        return next((t for t in cursor.data if t.descriptor.key == "read-files"), None)

    task = eventually("the read-files task", DEADLINE_S, read_files_task)
    expect(task.connector_id == connector_id, f"list_connector_tasks_v1: {task!r}")
    report.ok("list_connector_tasks_v1", f"{type(task).__name__} {task.descriptor.key} {task.status.value}")

    one = writer.get_connector_task_v1(request={**ids, "task_id": task.id}).task_response.data
    expect(one.id == task.id and one.descriptor.key == "read-files", f"get_connector_task_v1: {one!r}")
    report.ok("get_connector_task_v1", f"{one.id} {one.status.value}")

    # ---- a file dropped, read back through the SDK ----------------------------------------
    drop_file(directory)
    payment = eventually("the dropped payment", DEADLINE_S,
                         lambda: payment_by_reference(writer, PAYMENT_REF))
    expect(payment.amount == AMOUNT and payment.initial_amount == AMOUNT
           and payment.asset == "EUR/2" and payment.type == m.PaymentType.PAY_IN
           and payment.status == m.PaymentStatus.SUCCEEDED
           and payment.scheme == m.PaymentScheme.SEPA_CREDIT
           and payment.connector_id == connector_id and payment.provider == m.Connector.DUMMY_PAY
           and payment.metadata == {"order": "42"},
           f"list_payments: {payment!r}")
    report.result["paymentID"] = payment.id
    report.ok("list_payments", f"{payment.reference} {payment.amount} {payment.asset}")

    got = writer.get_payment(request={"payment_id": payment.id}).payment_response.data
    expect(got.id == payment.id and got.amount == AMOUNT, f"get_payment: {got!r}")
    report.ok("get_payment", got.id)

    def account():
        cursor = writer.list_accounts_payments(request={"page_size": 100}).accounts_cursor.cursor
        return next((a for a in cursor.data if a.reference == ACCOUNT_REF), None)

    acc = eventually("the dropped account", DEADLINE_S, account)
    expect(acc.connector_id == connector_id and acc.default_asset == "EUR/2"
           and acc.account_name == "SDK account" and acc.type == m.AccountType.INTERNAL
           and payment.destination_account_id == acc.id,
           f"list_accounts_payments: {acc!r} (payment's destination {payment.destination_account_id})")
    report.result["accountID"] = acc.id
    report.ok("list_accounts_payments", f"{acc.reference} {acc.type.value}")

    def balances():
        cursor = writer.get_account_balances(request={"account_id": acc.id}).balances_cursor.cursor
        return cursor.data

    [balance] = eventually("the dropped balance", DEADLINE_S, balances)
    expect(balance.balance == BALANCE and balance.asset == "EUR/2" and balance.account_id == acc.id,
           f"get_account_balances: {balance!r}")
    report.ok("get_account_balances", f"{balance.balance} {balance.asset}")

    # ---- the read token: reads pass, changes are refused ------------------------------------
    expect([c.connector_id for c in connectors_named(reader, CONNECTOR_NAME)] == [connector_id],
           "list_all_connectors with the read token")
    report.ok("list_all_connectors (read token)")
    expect(payment_by_reference(reader, PAYMENT_REF) is not None, "list_payments with the read token")
    report.ok("list_payments (read token)")

    forbidden = error_record(http_error(lambda: reader.reset_connector_v1(request=ids)))
    expect(forbidden["status"] == 403, f"reset_connector_v1 with the read token: {forbidden}")
    report.result["forbidden"] = forbidden
    report.ok("reset_connector_v1 (read token)", f"refused: {forbidden}")

    refused = error_record(http_error(lambda: reader.uninstall_connector_v1(request=ids)))
    expect(refused["status"] == 403, f"uninstall_connector_v1 with the read token: {refused}")
    report.ok("uninstall_connector_v1 (read token)", f"refused: {refused}")

    # ---- no token ----------------------------------------------------------------------------
    unauthorized = error_record(http_error(lambda: anonymous.list_payments(request={})))
    expect(unauthorized["status"] == 401, f"list_payments with no token: {unauthorized}")
    report.result["unauthorized"] = unauthorized
    report.ok("list_payments (no token)", f"refused: {unauthorized}")

    # ---- the write token again: reset (the data comes back from the file), uninstall -----------
    reset = writer.reset_connector_v1(request=ids)
    expect(reset.status_code == 204, f"reset_connector_v1: status {reset.status_code}")
    report.ok("reset_connector_v1", "204")
    again = eventually("the payment ingested again after the reset", DEADLINE_S,
                       lambda: payment_by_reference(writer, PAYMENT_REF))
    expect(again.id == payment.id and again.amount == AMOUNT, f"after reset: {again!r}")
    report.ok("list_payments (after reset)", again.id)

    gone = writer.uninstall_connector_v1(request=ids)
    expect(gone.status_code == 204, f"uninstall_connector_v1: status {gone.status_code}")
    expect(connectors_named(writer, CONNECTOR_NAME) == [], "the connector is still listed")
    report.ok("uninstall_connector_v1", "204, no longer listed")


if __name__ == "__main__":
    main(run)
