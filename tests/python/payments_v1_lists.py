"""Formance's Python SDK (payments.v1) lists against Tributary: `list_payments`,
`list_accounts_payments` and `get_account_balances` with the query language (as the `query`
parameter, and as the JSON body the SDK's `list_accounts_payments` sends), `sort`, a page size
above the maximum (clamped, not refused), the balances `limit`, an updatedAt-ordered walk of
the cursor, and an unsupported field refused with 400 VALIDATION.

Every answer is the SDK's typed object: a shape it refuses fails the call, and so the script.
Run by tests/it/python_sdk/lists.rs, which sets, beside sdk_harness's variables:
TRIBUTARY_DUMMYPAY_DIR, an empty directory under DUMMY-PAY's allowed roots.
"""

import json
import os
from datetime import datetime, timezone

from formance_sdk_python.models import payments as m

from sdk_harness import Report, env, error_record, eventually, expect, http_error, main, sdk

PAYMENTS = 120
# Beyond 64 bits and beyond f64's precision: BIG and BIG + 1 are one float.
BIG = 123456789012345678901234567890123
DEADLINE_S = 60


def amount(i: int) -> int:
    return BIG + i if i % 10 == 0 else 1000 + i


def status(i: int) -> str:
    return ["SUCCEEDED", "FAILED", "PENDING"][i % 3]


def drop_file(directory: str) -> None:
    """One JSON Lines file: two accounts, PAYMENTS payments, twelve balances of one account."""
    lines = []
    for ref, name in [("acc-a", "Alpha"), ("acc-b", "Beta")]:
        lines.append({"kind": "account", "account": {
            "reference": ref, "createdAt": "2024-01-01T00:00:00Z", "defaultAsset": "EUR/2",
            "accountName": name, "type": "INTERNAL", "metadata": {"team": name.lower()}}})
    for i in range(PAYMENTS):
        lines.append({"kind": "payment", "payment": {
            "reference": f"pay-{i:03}", "createdAt": f"2024-02-01T00:{i // 60:02}:{i % 60:02}Z",
            "amount": amount(i), "asset": "EUR/2", "type": "PAY-IN", "status": status(i),
            "scheme": "visa", "destinationAccountId": "acc-a",
            "metadata": {"bucket": str(i % 7)}}})
    for h in range(12):
        lines.append({"kind": "balance", "balance": {
            "accountReference": "acc-a", "asset": "EUR/2", "balance": 100 * (h + 1),
            "createdAt": f"2024-03-01T{h:02}:00:00Z"}})
    tmp = os.path.join(directory, ".lists.jsonl")
    with open(tmp, "w") as f:
        f.write("\n".join(json.dumps(l) for l in lines) + "\n")
    os.utime(tmp, (0, 0))
    os.rename(tmp, os.path.join(directory, "lists.jsonl"))


def walk(call, request: dict, cursor_of) -> list:
    """Every row of a list, following `next`."""
    rows, req = [], dict(request)
    while True:
        cursor = cursor_of(call(request=req))
        rows.extend(cursor.data)
        if not cursor.next:
            return rows
        req = {"cursor": cursor.next}


def run(report: Report) -> None:
    directory = env("TRIBUTARY_DUMMYPAY_DIR")
    v1 = sdk(env("TRIBUTARY_WRITE_TOKEN")).payments.v1
    reader = sdk(env("TRIBUTARY_READ_TOKEN")).payments.v1
    installed = v1.install_connector(request={
        "connector": m.Connector.DUMMY_PAY,
        "connector_config": m.DummyPayConfig(
            name="sdk-lists", directory=directory, file_polling_period="1s"),
    })
    expect(installed.status_code == 201, f"install_connector: {installed.status_code}")
    report.ok("install_connector")
    drop_file(directory)

    def all_in():
        cursor = reader.list_payments(request={"page_size": 1000}).payments_cursor.cursor
        # Clamped to the maximum, as go-libs does: the cursor says 100, not an error.
        expect(cursor.page_size == 100, f"page_size 1000 served as {cursor.page_size}")
        rows = walk(reader.list_payments, {"page_size": 100}, lambda r: r.payments_cursor.cursor)
        return rows if len(rows) == PAYMENTS else None

    eventually("every payment of the file", DEADLINE_S, all_in)
    report.result["clampedPageSize"] = 100
    report.ok("list_payments (page_size 1000, clamped)")

    # The query as a parameter: FAILED and at least BIG (exact: BIG + 1 > BIG only exactly).
    q = {"$and": [{"$match": {"status": "FAILED"}}, {"$gt": {"amount": BIG}}]}
    cursor = reader.list_payments(request={
        "query": json.dumps(q), "sort": ["createdAt:asc"], "page_size": 500,
    }).payments_cursor.cursor
    refs = [p.reference for p in cursor.data]
    expected = [f"pay-{i:03}" for i in range(PAYMENTS)
                if status(i) == "FAILED" and amount(i) > BIG]
    expect(refs == expected, f"list_payments query: {refs} != {expected}")
    report.result["failedBig"] = [p.id for p in cursor.data]
    report.ok("list_payments (query, sort createdAt:asc)", f"{len(refs)} rows")

    # Nested $or / $not with metadata, newest first, two pages through the cursor.
    q = {"$or": [{"$match": {"metadata[bucket]": "3"}},
                 {"$not": {"$lte": {"initial_amount": 1100}}}]}
    rows = walk(reader.list_payments,
                {"query": json.dumps(q), "sort": ["createdAt:desc"], "page_size": 10},
                lambda r: r.payments_cursor.cursor)
    expected = sorted(f"pay-{i:03}" for i in range(PAYMENTS)
                      if i % 7 == 3 or amount(i) > 1100)
    expect(sorted(p.reference for p in rows) == expected, "list_payments $or/$not/metadata")
    expect([p.created_at for p in rows] == sorted((p.created_at for p in rows), reverse=True),
           "createdAt:desc order")
    report.result["bucketOrLarge"] = len(rows)
    report.ok("list_payments (metadata, $or, $not, cursor)", f"{len(rows)} rows")

    # updatedAt-ordered walk: every payment once, in non-decreasing updatedAt order.
    rows = walk(reader.list_payments, {"sort": ["updatedAt:asc", "id:asc"], "page_size": 25},
                lambda r: r.payments_cursor.cursor)
    expect(len({p.id for p in rows}) == PAYMENTS, f"updatedAt walk saw {len(rows)} rows")
    report.result["updatedAtWalk"] = [p.id for p in rows]
    report.ok("list_payments (sort updatedAt:asc, cursor)", f"{len(rows)} rows")

    # An unsupported field: 400 VALIDATION naming it, never ignored.
    error = http_error(lambda: reader.list_payments(
        request={"query": json.dumps({"$match": {"colour": "red"}})}))
    report.result["unsupported"] = {**error_record(error), "message": json.loads(error.body)
                                    .get("errorMessage")}
    report.ok("list_payments (unsupported field)", f"{error.status_code}")

    # Accounts: the query as the JSON body (the SDK's request_body), and as a parameter.
    cursor = reader.list_accounts_payments(request={
        "request_body": {"$match": {"metadata[team]": "beta"}},
        "sort": ["createdAt:desc"], "page_size": 500,
    }).accounts_cursor.cursor
    expect([a.reference for a in cursor.data] == ["acc-b"] and cursor.page_size == 100,
           f"list_accounts_payments body query: {cursor!r}")
    report.ok("list_accounts_payments (body query, page_size 500)")
    cursor = reader.list_accounts_payments(request={
        "query": json.dumps({"$lt": {"name": "B"}}),
    }).accounts_cursor.cursor
    expect([a.reference for a in cursor.data] == ["acc-a"], f"accounts query: {cursor!r}")
    account_id = cursor.data[0].id
    report.result["accountID"] = account_id
    report.ok("list_accounts_payments (query parameter)")

    # Balances: limit, page size above the maximum, sort, asset, from / to.
    cursor = reader.get_account_balances(request={
        "account_id": account_id, "limit": 5, "page_size": 1000, "sort": ["createdAt:desc"],
        "asset": "EUR/2",
    }).balances_cursor.cursor
    expect(len(cursor.data) == 5 and cursor.has_more, f"limit 5: {cursor!r}")
    expect([b.balance for b in cursor.data] == [1200, 1100, 1000, 900, 800],
           f"newest first: {[b.balance for b in cursor.data]}")
    report.ok("get_account_balances (limit, sort, asset)")
    cursor = reader.get_account_balances(request={
        "account_id": account_id, "page_size": 1000, "sort": ["createdAt:asc"],
        "from_": datetime(2024, 3, 1, 3, tzinfo=timezone.utc),
        "to": datetime(2024, 3, 1, 6, tzinfo=timezone.utc),
    }).balances_cursor.cursor
    report.result["balancesWindow"] = [b.balance for b in cursor.data]
    report.ok("get_account_balances (from, to)", f"{[b.balance for b in cursor.data]}")


if __name__ == "__main__":
    main(run)
