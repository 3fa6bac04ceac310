"""Formance's Python SDK (payments.v1) against Tributary: bank accounts. Every bank account
operation of the client — create (with and without a connector), list (with a cursor), get,
forward to DUMMY-PAY, update metadata — through its typed models, so a field of ours whose name,
type or shape the SDK does not accept fails the call (ResponseValidationError) and the script.

Run by tests/it/python_sdk/bank_accounts.rs, which sets, beside sdk_harness's variables:
TRIBUTARY_DUMMYPAY_DIR, an empty directory under DUMMY-PAY's allowed roots, and checks what the
script saw against what the service stored.
"""

from formance_sdk_python.models import payments as m

from sdk_harness import Report, env, error_record, expect, http_error, main, sdk

IBAN = "FR7630006000011234567890189"
ACCOUNT_NUMBER = "12345678901"


def run(report: Report) -> None:
    directory = env("TRIBUTARY_DUMMYPAY_DIR")
    writer = sdk(env("TRIBUTARY_WRITE_TOKEN")).payments.v1
    reader = sdk(env("TRIBUTARY_READ_TOKEN")).payments.v1

    installed = writer.install_connector(request={
        "connector": m.Connector.DUMMY_PAY,
        "connector_config": m.DummyPayConfig(
            name="sdk-bank", directory=directory, file_polling_period="1s"),
    })
    connector_id = installed.connector_response.data.connector_id
    report.result["connectorID"] = connector_id
    report.ok("install_connector", connector_id)

    # ---- create, not forwarded ----------------------------------------------------------------
    created = writer.create_bank_account(request=m.BankAccountRequest(
        name="sdk payee", country="FR", iban=IBAN, account_number=ACCOUNT_NUMBER,
        swift_bic_code="AGRIFRPP", metadata={"owner": "sdk"}))
    expect(created.status_code == 200, f"create_bank_account: status {created.status_code}")
    plain = created.bank_account_response.data
    expect(plain.name == "sdk payee" and plain.country == "FR"
           and plain.swift_bic_code == "AGRIFRPP" and plain.metadata == {"owner": "sdk"},
           f"create_bank_account: {plain!r}")
    expect(plain.iban == IBAN[:4] + "*" * (len(IBAN) - 8) + IBAN[-4:],
           f"create_bank_account: iban {plain.iban!r}")
    expect(plain.account_number == ACCOUNT_NUMBER[:2] + "*" * (len(ACCOUNT_NUMBER) - 5)
           + ACCOUNT_NUMBER[-3:], f"create_bank_account: accountNumber {plain.account_number!r}")
    expect(not plain.related_accounts, f"create_bank_account: {plain.related_accounts!r}")
    report.result["plain"] = {"id": plain.id, "iban": plain.iban,
                              "accountNumber": plain.account_number}
    report.ok("create_bank_account", plain.id)

    # ---- create, forwarded at once --------------------------------------------------------------
    at_once = writer.create_bank_account(request=m.BankAccountRequest(
        name="sdk direct", country="DE", account_number="DE-0001-2345",
        connector_id=connector_id)).bank_account_response.data
    expect(len(at_once.related_accounts or []) == 1
           and at_once.related_accounts[0].connector_id == connector_id
           and at_once.related_accounts[0].provider == "DUMMY-PAY",
           f"create_bank_account with connectorID: {at_once!r}")
    report.result["atOnce"] = {"id": at_once.id,
                               "accountID": at_once.related_accounts[0].account_id}
    report.ok("create_bank_account (connectorID)", at_once.id)

    # ---- get ------------------------------------------------------------------------------------
    got = reader.get_bank_account(request={"bank_account_id": plain.id})
    expect(got.bank_account_response.data == plain, f"get_bank_account: {got!r}")
    report.ok("get_bank_account", plain.id)

    # ---- list, one per page: the cursor walks both --------------------------------------------
    first = reader.list_bank_accounts(request={"page_size": 1}).bank_accounts_cursor.cursor
    expect(first.has_more and first.page_size == 1 and first.next is not None
           and len(first.data) == 1, f"list_bank_accounts: {first!r}")
    second = reader.list_bank_accounts(
        request={"cursor": first.next}).bank_accounts_cursor.cursor
    listed = [first.data[0].id, second.data[0].id]
    expect(listed == [at_once.id, plain.id], f"list_bank_accounts: newest first? {listed}")
    expect(not second.has_more and second.data[0].iban is None,
           f"list_bank_accounts: {second!r}")
    report.ok("list_bank_accounts", f"{listed}")
    # The SDK's list_bank_accounts has `sort` but no `query` (9.0.1): the query is tested over
    # HTTP (tests/it/api/query.rs). Oldest first:
    oldest = reader.list_bank_accounts(
        request={"sort": ["createdAt:asc"]}).bank_accounts_cursor.cursor
    expect([b.id for b in oldest.data] == [plain.id, at_once.id],
           f"list_bank_accounts sort=createdAt:asc: {oldest!r}")
    report.result["oldestFirst"] = [b.id for b in oldest.data]
    report.ok("list_bank_accounts (sort)", f"{report.result['oldestFirst']}")

    # ---- forward --------------------------------------------------------------------------------
    forwarded = writer.forward_bank_account(request={
        "bank_account_id": plain.id,
        "forward_bank_account_request": {"connector_id": connector_id},
    }).bank_account_response.data
    related = forwarded.related_accounts or []
    expect(len(related) == 1 and related[0].connector_id == connector_id
           and forwarded.connector_id == connector_id
           and forwarded.account_id == related[0].account_id
           and forwarded.provider == "DUMMY-PAY", f"forward_bank_account: {forwarded!r}")
    report.result["forwarded"] = {"accountID": related[0].account_id,
                                  "relatedID": related[0].id}
    report.ok("forward_bank_account", related[0].account_id)

    account = reader.get_account_payments(
        request={"account_id": related[0].account_id}).account_response
    expect(account.data.type == m.AccountType.EXTERNAL and account.data.account_name == "sdk payee",
           f"get_account_payments of the related account: {account!r}")
    report.ok("get_account_payments (related)", account.data.type.value)

    again = error_record(http_error(lambda: writer.forward_bank_account(request={
        "bank_account_id": plain.id,
        "forward_bank_account_request": {"connector_id": connector_id},
    })))
    expect(again["status"] == 400 and again["errorCode"] == "VALIDATION",
           f"forward_bank_account twice: {again}")
    report.result["forwardedTwice"] = again
    report.ok("forward_bank_account (again)", f"refused: {again}")

    # ---- metadata -------------------------------------------------------------------------------
    patched = writer.update_bank_account_metadata(request={
        "bank_account_id": plain.id,
        "update_bank_account_metadata_request": {"metadata": {"tier": "gold"}},
    })
    expect(patched.status_code == 204, f"update_bank_account_metadata: {patched.status_code}")
    after = reader.get_bank_account(request={"bank_account_id": plain.id})
    metadata = after.bank_account_response.data.metadata
    expect(metadata == {"owner": "sdk", "tier": "gold"}, f"metadata after update: {metadata}")
    report.ok("update_bank_account_metadata", f"{metadata}")

    refused = error_record(http_error(lambda: reader.update_bank_account_metadata(request={
        "bank_account_id": plain.id,
        "update_bank_account_metadata_request": {"metadata": {"x": "y"}},
    })))
    expect(refused["status"] == 403, f"update_bank_account_metadata, read token: {refused}")
    report.ok("update_bank_account_metadata (read token)", f"refused: {refused}")


if __name__ == "__main__":
    main(run)
