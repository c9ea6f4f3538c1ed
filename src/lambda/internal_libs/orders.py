"""Order records: parsing and totals, shared by the ingest and report functions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Order:
    order_id: str
    customer: str
    amount: Decimal


def parse_order(record: dict) -> Order:
    """Validate one raw order record; raises ValueError naming the missing field."""
    for field in ("order_id", "customer", "amount"):
        if field not in record:
            raise ValueError(f"order record is missing '{field}'")
    return Order(str(record["order_id"]), str(record["customer"]), Decimal(str(record["amount"])))


def total_by_customer(orders: list[Order]) -> dict[str, str]:
    """Sum of amounts per customer, as strings so the result serialises to JSON exactly."""
    totals: dict[str, Decimal] = {}
    for order in orders:
        totals[order.customer] = totals.get(order.customer, Decimal(0)) + order.amount
    return {customer: str(amount) for customer, amount in sorted(totals.items())}
