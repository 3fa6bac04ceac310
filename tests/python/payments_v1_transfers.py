"""Formance's Python SDK (payments.v1) against Tributary: transfer initiations executed by
DUMMY-PAY. Accounts come from a dropped file; then create (waiting and validated), list, get,
approve, reject, an illegal transition (400 naming the status), a FAILED send retried, a
partial reversal, delete, and the older connectors_transfer route.

Every answer is the SDK's typed object: a field of ours the SDK does not accept fails the call
with ResponseValidationError, and so the script. Run by tests/it/python_sdk/transfers.rs, which
sets, beside sdk_harness's variables, TRIBUTARY_DUMMYPAY_DIR (an empty directory under
DUMMY-PAY's allowed roots).
"""

import datetime
import json
import os

from formance_sdk_python.models import payments as m

from sdk_harness import Report, env, error_record, eventually, expect, http_error, main, sdk

DEADLINE_S = 30
# Beyond 64 bits: the SDK must read amounts as exact integers.
BIG = 123456789012345678901234567890
PAST = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def drop_accounts(directory: str) -> None:
    created = "2024-03-01T10:00:00Z"
    lines = [
        {"kind": "account", "account": {"reference": "main", "createdAt": created,
                                        "defaultAsset": "EUR/2", "type": "INTERNAL"}},
        {"kind": "account", "account": {"reference": "supplier", "createdAt": created,
                                        "defaultAsset": "EUR/2", "type": "EXTERNAL"}},
    ]
    hidden = os.path.join(directory, ".accounts.jsonl")
    with open(hidden, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))
    os.rename(hidden, os.path.join(directory, "accounts.jsonl"))


def run(report: Report) -> None:
    directory = env("TRIBUTARY_DUMMYPAY_DIR")
    v1 = sdk(env("TRIBUTARY_WRITE_TOKEN")).payments.v1

    installed = v1.install_connector(request={
        "connector": m.Connector.DUMMY_PAY,
        "connector_config": m.DummyPayConfig(
            name="sdk-transfers", directory=directory, file_polling_period="1s"),
    })
    connector_id = installed.connector_response.data.connector_id
    report.result["connectorID"] = connector_id
    drop_accounts(directory)

    def accounts():
        cursor = v1.list_accounts_payments(request={"page_size": 100}).accounts_cursor.cursor
        found = {a.reference: a.id for a in cursor.data}
        return found if {"main", "supplier"} <= set(found) else None

    ids = eventually("the dropped accounts", DEADLINE_S, accounts)

    def request(reference, kind, amount, validated):
        return m.TransferInitiationRequest(
            reference=reference, type=kind, amount=amount, asset="EUR/2",
            validated=validated, connector_id=connector_id, scheduled_at=PAST,
            source_account_id=ids["main"], description="sdk",
            destination_account_id=ids["main"] if kind == "TRANSFER" else ids["supplier"],
            metadata={"via": "sdk"})

    # ---- create: sent at once, with an amount beyond 64 bits -------------------------------
    created = v1.create_transfer_initiation(
        request=request("sdk-t-1", m.TransferInitiationRequestType.TRANSFER, BIG, True)
    ).transfer_initiation_response.data
    expect(created.status == m.TransferInitiationStatus.PROCESSED and created.amount == BIG
           and created.initial_amount == BIG and created.connector_id == connector_id
           and created.type == m.TransferInitiationType.TRANSFER
           and created.metadata == {"via": "sdk"},
           f"create_transfer_initiation: {created!r}")
    report.result["processed"] = created.id
    report.ok("create_transfer_initiation", f"{created.id} {created.status.value}")

    listed = v1.list_transfer_initiations(request={"page_size": 10}).transfer_initiations_cursor.cursor
    expect([t.id for t in listed.data] == [created.id], f"list_transfer_initiations: {listed!r}")
    report.ok("list_transfer_initiations", f"{len(listed.data)} initiation(s)")

    got = v1.get_transfer_initiation(request={"transfer_id": created.id}).transfer_initiation_response.data
    expect([a.status for a in got.related_adjustments][:2]
           == [m.TransferInitiationStatus.PROCESSED, m.TransferInitiationStatus.PROCESSING]
           and len(got.related_payments) == 1
           and got.related_payments[0].status == m.LegacyPaymentStatus.SUCCEEDED,
           f"get_transfer_initiation: {got!r}")
    report.result["paymentID"] = got.related_payments[0].payment_id
    report.ok("get_transfer_initiation", f"{len(got.related_adjustments)} changes, payment linked")

    # ---- reverse part of it ------------------------------------------------------------------
    reversed_ = v1.reverse_transfer_initiation(request={
        "transfer_id": created.id,
        "reverse_transfer_initiation_request": m.ReverseTransferInitiationRequest(
            reference="sdk-r-1", amount=1000, asset="EUR/2", description="refund",
            metadata=None),
    })
    expect(reversed_.status_code == 204, f"reverse_transfer_initiation: {reversed_.status_code}")
    after = v1.get_transfer_initiation(request={"transfer_id": created.id}).transfer_initiation_response.data
    expect(after.status == m.TransferInitiationStatus.PARTIALLY_REVERSED
           and after.amount == BIG - 1000 and after.initial_amount == BIG,
           f"after reverse_transfer_initiation: {after!r}")
    report.ok("reverse_transfer_initiation", f"{after.status.value} {after.amount}")

    # ---- approve and reject; an illegal transition is a 400 naming the status ------------------
    waiting = v1.create_transfer_initiation(
        request=request("sdk-p-1", m.TransferInitiationRequestType.PAYOUT, 500, False)
    ).transfer_initiation_response.data
    expect(waiting.status == m.TransferInitiationStatus.WAITING_FOR_VALIDATION, f"{waiting!r}")
    approved = v1.update_transfer_initiation_status(request={
        "transfer_id": waiting.id,
        "update_transfer_initiation_status_request": {"status": m.Status.VALIDATED},
    })
    expect(approved.status_code == 204, f"update_transfer_initiation_status: {approved.status_code}")
    now = v1.get_transfer_initiation(request={"transfer_id": waiting.id}).transfer_initiation_response.data
    expect(now.status == m.TransferInitiationStatus.PROCESSED, f"after approval: {now!r}")
    report.ok("update_transfer_initiation_status", "VALIDATED → PROCESSED")

    illegal = http_error(lambda: v1.update_transfer_initiation_status(request={
        "transfer_id": waiting.id,
        "update_transfer_initiation_status_request": {"status": m.Status.REJECTED},
    }))
    record = error_record(illegal)
    expect(record["status"] == 400 and record["errorCode"] == "VALIDATION"
           and "PROCESSED" in illegal.body, f"an illegal transition: {record} {illegal.body}")
    report.result["illegal"] = record
    report.ok("update_transfer_initiation_status (illegal)", illegal.body)

    rejected = v1.create_transfer_initiation(
        request=request("sdk-p-2", m.TransferInitiationRequestType.PAYOUT, 500, False)
    ).transfer_initiation_response.data
    v1.update_transfer_initiation_status(request={
        "transfer_id": rejected.id,
        "update_transfer_initiation_status_request": {"status": m.Status.REJECTED},
    })
    deleted = v1.delete_transfer_initiation(request={"transfer_id": rejected.id})
    expect(deleted.status_code == 204, f"delete_transfer_initiation: {deleted.status_code}")
    report.result["deleted"] = rejected.id
    report.ok("delete_transfer_initiation", "REJECTED, then deleted")

    # ---- a FAILED send, retried ---------------------------------------------------------------
    outbox = os.path.join(directory, "outbox")
    blocked = outbox + ".moved"
    os.rename(outbox, blocked)
    with open(outbox, "w", encoding="utf-8") as f:
        f.write("not a directory")
    failed = v1.create_transfer_initiation(
        request=request("sdk-f-1", m.TransferInitiationRequestType.PAYOUT, 700, True)
    ).transfer_initiation_response.data
    expect(failed.status == m.TransferInitiationStatus.FAILED and "outbox" in (failed.error or ""),
           f"a blocked send: {failed!r}")
    os.remove(outbox)
    os.rename(blocked, outbox)
    retried = v1.retry_transfer_initiation(request={"transfer_id": failed.id})
    expect(retried.status_code == 204, f"retry_transfer_initiation: {retried.status_code}")
    done = v1.get_transfer_initiation(request={"transfer_id": failed.id}).transfer_initiation_response.data
    expect(done.status == m.TransferInitiationStatus.PROCESSED, f"after retry: {done!r}")
    report.result["retried"] = failed.id
    report.ok("retry_transfer_initiation", "FAILED → PROCESSED")

    # ---- the older route ------------------------------------------------------------------------
    sent = v1.connectors_transfer(request={
        "connector": m.Connector.DUMMY_PAY,
        "transfer_request": {"amount": 250, "asset": "EUR/2", "destination": "main"},
    }).transfer_response
    expect(bool(sent.id), f"connectors_transfer: {sent!r}")
    report.result["connectorsTransfer"] = sent.id
    report.ok("connectors_transfer", sent.id)

    # ---- the list's query (the SDK sends it as the `query` parameter) and sort ------------------
    def listed_with(query, **extra):
        request = {"page_size": 100, "query": json.dumps(query), **extra}
        return v1.list_transfer_initiations(request=request).transfer_initiations_cursor.cursor

    payouts = listed_with({"$and": [{"$match": {"type": "PAYOUT"}}, {"$gte": {"amount": 600}}]})
    expect([t.id for t in payouts.data] == [failed.id], f"query type+amount: {payouts!r}")
    # Exact beyond 64 bits: what is left of the first transfer is BIG - 1000.
    exact = listed_with({"$match": {"amount": BIG - 1000}})
    expect([t.id for t in exact.data] == [created.id], f"query exact amount: {exact!r}")
    nested = listed_with({"$or": [{"$match": {"status": "PARTIALLY_REVERSED"}},
                                  {"$not": {"$exists": {"metadata": "via"}}}]})
    expect(sorted(t.id for t in nested.data) == sorted([created.id, sent.id]),
           f"query $or/$not: {nested!r}")
    report.result["queried"] = {"payouts": [t.id for t in payouts.data],
                                "exact": [t.id for t in exact.data],
                                "nested": sorted(t.id for t in nested.data)}
    report.ok("list_transfer_initiations (query)", f"{report.result['queried']}")

    # One row a page, oldest first, following `next`: every page stays filtered.
    walked = []
    page = v1.list_transfer_initiations(request={
        "page_size": 1, "sort": ["createdAt:asc"],
        "query": json.dumps({"$match": {"metadata[via]": "sdk"}}),
    }).transfer_initiations_cursor.cursor
    while True:
        expect(len(page.data) == 1, f"a page of one: {page!r}")
        walked.append(page.data[0].id)
        if not page.has_more:
            break
        page = v1.list_transfer_initiations(
            request={"cursor": page.next}).transfer_initiations_cursor.cursor
    expect(walked == [created.id, waiting.id, failed.id], f"walked with the query: {walked}")
    report.result["walked"] = walked
    report.ok("list_transfer_initiations (query, cursor)", f"{walked}")

    unknown = http_error(lambda: listed_with({"$match": {"colour": "red"}}))
    record = error_record(unknown)
    expect(record["status"] == 400 and record["errorCode"] == "VALIDATION"
           and "colour" in unknown.body, f"an unknown field: {record} {unknown.body}")
    report.result["unknownField"] = record
    report.ok("list_transfer_initiations (unknown field)", unknown.body)


if __name__ == "__main__":
    main(run)
