"""Formance's Python SDK (payments.v1) against Tributary: accounts and payments created by hand
(create_account, create_payment: a repeat with a new status is an update with an adjustment),
balances fed by a DUMMY-PAY file, and every pool operation: create_pool, get_pool, list_pools,
the account's pools, get_pool_balances (at a time), get_pool_balances_latest,
add_account_to_pool, remove_account_from_pool, update_pool_query, delete_pool.

Every answer is the SDK's typed object: a field the SDK's models refuse fails the script. Run by
tests/it/python_sdk/pools.rs, which sets, beside sdk_harness's variables:
TRIBUTARY_DUMMYPAY_DIR, an empty directory under DUMMY-PAY's allowed roots.
"""

import json
import os
from datetime import datetime, timezone

from formance_sdk_python.models import payments as m

from sdk_harness import Report, env, error_record, eventually, expect, http_error, main, sdk

CREATED = datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)
# Beyond 64 bits: amounts must stay exact both ways.
AMOUNT = 123456789012345678901234567890
BIG_BALANCE = 10**25
DEADLINE_S = 30


def drop_balances(directory: str) -> None:
    """Balances for the hand-made accounts (same connector, same references), in a DUMMY-PAY
    file renamed into place."""
    at = "2024-03-02T00:00:00Z"
    lines = [
        {"kind": "balance", "balance": {"accountReference": "sdk-pool-a", "asset": "EUR/2",
                                        "balance": BIG_BALANCE, "createdAt": at}},
        {"kind": "balance", "balance": {"accountReference": "sdk-pool-b", "asset": "EUR/2",
                                        "balance": 5, "createdAt": at}},
        {"kind": "balance", "balance": {"accountReference": "sdk-pool-b", "asset": "USD/2",
                                        "balance": -7, "createdAt": at}},
        {"kind": "balance", "balance": {"accountReference": "sdk-pool-c", "asset": "EUR/2",
                                        "balance": 100, "createdAt": at}},
    ]
    hidden = os.path.join(directory, ".balances.jsonl")
    with open(hidden, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines))
    os.rename(hidden, os.path.join(directory, "balances.jsonl"))


def drop_late_balance(directory: str) -> None:
    """A balance for an account created after the pool's query was set."""
    line = {"kind": "balance", "balance": {"accountReference": "sdk-pool-d", "asset": "EUR/2",
                                           "balance": BIG_BALANCE, "createdAt": "2024-03-03T00:00:00Z"}}
    hidden = os.path.join(directory, ".late.jsonl")
    with open(hidden, "w", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    os.rename(hidden, os.path.join(directory, "late.jsonl"))


def balances_of(balances) -> dict:
    return {b.asset: b.amount for b in balances}


def run(report: Report) -> None:
    v1 = sdk(env("TRIBUTARY_WRITE_TOKEN")).payments.v1
    installed = v1.install_connector(request={
        "connector": m.Connector.DUMMY_PAY,
        "connector_config": m.DummyPayConfig(
            name="sdk-pools", directory=env("TRIBUTARY_DUMMYPAY_DIR"), file_polling_period="1s"),
    })
    connector_id = installed.connector_response.data.connector_id
    report.result["connectorID"] = connector_id
    report.ok("install_connector", connector_id)

    # ---- accounts and a payment by hand ---------------------------------------------------
    accounts = {}
    for ref in ("sdk-pool-a", "sdk-pool-b", "sdk-pool-c"):
        created = v1.create_account(request=m.AccountRequest(
            connector_id=connector_id, created_at=CREATED, reference=ref,
            type=m.AccountType.INTERNAL, account_name=f"Account {ref}", default_asset="EUR/2",
            metadata={"source": "sdk"}))
        acc = created.account_response.data
        expect(acc.reference == ref and acc.connector_id == connector_id
               and acc.account_name == f"Account {ref}" and acc.default_asset == "EUR/2"
               and acc.metadata == {"source": "sdk"} and acc.pools == [],
               f"create_account: {acc!r}")
        accounts[ref] = acc.id
    report.result["accounts"] = accounts
    report.ok("create_account", f"{len(accounts)} accounts")

    def pay(status: m.PaymentStatus):
        return v1.create_payment(request=m.PaymentRequest(
            amount=AMOUNT, asset="EUR/2", connector_id=connector_id, created_at=CREATED,
            reference="sdk-manual-pay", scheme=m.PaymentScheme.SEPA_CREDIT, status=status,
            type=m.PaymentType.TRANSFER, source_account_id=accounts["sdk-pool-a"],
            destination_account_id=accounts["sdk-pool-b"])).payment_response.data

    first = pay(m.PaymentStatus.PENDING)
    expect(first.amount == AMOUNT and first.initial_amount == AMOUNT
           and first.status == m.PaymentStatus.PENDING
           and first.source_account_id == accounts["sdk-pool-a"]
           and first.destination_account_id == accounts["sdk-pool-b"]
           and len(first.adjustments) == 1, f"create_payment: {first!r}")
    second = pay(m.PaymentStatus.SUCCEEDED)
    expect(second.id == first.id and second.status == m.PaymentStatus.SUCCEEDED
           and len(second.adjustments) == 2, f"create_payment (again): {second!r}")
    report.result["paymentID"] = second.id
    report.ok("create_payment", f"{second.id}: PENDING then SUCCEEDED, 2 adjustments")

    drop_balances(env("TRIBUTARY_DUMMYPAY_DIR"))
    for ref in accounts:
        eventually(f"the balances of {ref}", DEADLINE_S, lambda: v1.get_account_balances(
            request={"account_id": accounts[ref]}).balances_cursor.cursor.data)

    # ---- pools ----------------------------------------------------------------------------
    members = [accounts["sdk-pool-a"], accounts["sdk-pool-b"]]
    pool = v1.create_pool(request=m.PoolRequest(name="sdk-pool", account_i_ds=members)
                          ).pool_response.data
    expect(pool.name == "sdk-pool" and pool.accounts == members
           and pool.type == m.PoolTypeEnum.STATIC, f"create_pool: {pool!r}")
    report.result["poolID"] = pool.id
    report.ok("create_pool", pool.id)

    got = v1.get_pool(request={"pool_id": pool.id}).pool_response.data
    expect(got.id == pool.id and got.accounts == members, f"get_pool: {got!r}")
    report.ok("get_pool", f"{len(got.accounts)} accounts")

    listed = v1.list_pools(request={"page_size": 100}).pools_cursor.cursor
    expect([p.id for p in listed.data] == [pool.id], f"list_pools: {listed!r}")
    report.ok("list_pools", f"{len(listed.data)} pool")

    acc = v1.get_account_payments(request={"account_id": members[0]}).account_response.data
    expect(acc.pools == [pool.id], f"get_account_payments (pools): {acc!r}")
    report.ok("get_account_payments", f"pools {acc.pools}")

    at = v1.get_pool_balances(request={"pool_id": pool.id, "at": datetime.now(timezone.utc)}
                              ).pool_balances_response.data.balances
    expect(balances_of(at) == {"EUR/2": BIG_BALANCE + 5, "USD/2": -7},
           f"get_pool_balances: {at!r}")
    before = v1.get_pool_balances(request={"pool_id": pool.id, "at": CREATED}
                                  ).pool_balances_response.data.balances
    expect(before == [], f"get_pool_balances before any balance: {before!r}")
    # As text: the Rust side reads RESULT with a JSON parser whose numbers are floats.
    report.result["balancesAt"] = {k: str(v) for k, v in balances_of(at).items()}
    report.ok("get_pool_balances", f"{balances_of(at)}")

    latest = v1.get_pool_balances_latest(request={"pool_id": pool.id}
                                         ).pool_balances_latest_response.data
    expect(balances_of(latest) == {"EUR/2": BIG_BALANCE + 5, "USD/2": -7},
           f"get_pool_balances_latest: {latest!r}")
    report.ok("get_pool_balances_latest", f"{balances_of(latest)}")

    added = v1.add_account_to_pool(request={
        "pool_id": pool.id,
        "add_account_to_pool_request": m.AddAccountToPoolRequest(account_id=accounts["sdk-pool-c"]),
    })
    expect(added.status_code == 204, f"add_account_to_pool: {added.status_code}")
    latest = v1.get_pool_balances_latest(request={"pool_id": pool.id}
                                         ).pool_balances_latest_response.data
    expect(balances_of(latest) == {"EUR/2": BIG_BALANCE + 105, "USD/2": -7},
           f"after add_account_to_pool: {latest!r}")
    report.result["balancesWithC"] = {k: str(v) for k, v in balances_of(latest).items()}
    report.ok("add_account_to_pool", f"{balances_of(latest)}")

    removed = v1.remove_account_from_pool(request={
        "pool_id": pool.id, "account_id": accounts["sdk-pool-b"]})
    expect(removed.status_code == 204, f"remove_account_from_pool: {removed.status_code}")
    got = v1.get_pool(request={"pool_id": pool.id}).pool_response.data
    expect(got.accounts == [accounts["sdk-pool-a"], accounts["sdk-pool-c"]],
           f"after remove_account_from_pool: {got!r}")
    report.ok("remove_account_from_pool", f"{len(got.accounts)} accounts")

    query = {"$match": {"connectorID": connector_id}}
    updated = v1.update_pool_query(request={
        "pool_id": pool.id, "update_pool_query_request": m.UpdatePoolQueryRequest(query=query)})
    expect(updated.status_code == 204, f"update_pool_query: {updated.status_code}")
    got = v1.get_pool(request={"pool_id": pool.id}).pool_response.data
    # The query is evaluated: every account of the connector is a member now, and the
    # balances are theirs, summed exactly.
    all_three = sorted(accounts.values())
    expect(got.type == m.PoolTypeEnum.DYNAMIC and got.query == query
           and sorted(got.accounts) == all_three, f"after update_pool_query: {got!r}")
    latest = v1.get_pool_balances_latest(request={"pool_id": pool.id}
                                         ).pool_balances_latest_response.data
    expect(balances_of(latest) == {"EUR/2": BIG_BALANCE + 105, "USD/2": -7},
           f"get_pool_balances_latest after update_pool_query: {latest!r}")
    report.result["balancesDynamic"] = {k: str(v) for k, v in balances_of(latest).items()}

    # An account created afterwards joins it, and so does its balance.
    late = v1.create_account(request=m.AccountRequest(
        connector_id=connector_id, created_at=CREATED, reference="sdk-pool-d",
        type=m.AccountType.INTERNAL)).account_response.data
    expect(late.pools == [pool.id], f"create_account (pools of a late account): {late!r}")
    drop_late_balance(env("TRIBUTARY_DUMMYPAY_DIR"))
    latest = eventually("the late account's balance in the pool", DEADLINE_S, lambda: (
        lambda b: b if b.get("EUR/2") == 2 * BIG_BALANCE + 105 else None)(balances_of(
            v1.get_pool_balances_latest(request={"pool_id": pool.id}
                                        ).pool_balances_latest_response.data)))
    got = v1.get_pool(request={"pool_id": pool.id}).pool_response.data
    expect(sorted(got.accounts) == sorted(all_three + [late.id]),
           f"get_pool after a late account: {got!r}")
    report.result["lateAccount"] = late.id
    report.result["balancesLate"] = {k: str(v) for k, v in latest.items()}

    # A query on a field accounts do not have is refused and changes nothing.
    refused = http_error(lambda: v1.update_pool_query(request={
        "pool_id": pool.id,
        "update_pool_query_request": m.UpdatePoolQueryRequest(query={"$match": {"colour": "red"}})}))
    report.result["badQuery"] = error_record(refused)
    report.result["badQueryMessage"] = json.loads(refused.body).get("errorMessage")
    unchanged = v1.get_pool(request={"pool_id": pool.id}).pool_response.data
    expect(unchanged.query == query, f"after a refused update_pool_query: {unchanged!r}")
    report.result["poolBeforeDelete"] = {"accounts": got.accounts, "type": got.type.value,
                                         "query": got.query}
    report.ok("update_pool_query", f"{got.type.value} {got.query}: {len(got.accounts)} accounts")

    deleted = v1.delete_pool(request={"pool_id": pool.id})
    expect(deleted.status_code == 204, f"delete_pool: {deleted.status_code}")
    report.ok("delete_pool", "204")


if __name__ == "__main__":
    main(run)
