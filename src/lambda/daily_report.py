"""Lambda: total the day's orders per customer."""

from internal_libs.orders import parse_order, total_by_customer


def handler(event, context):
    orders = [parse_order(record) for record in event.get("orders", [])]
    return {"orders": len(orders), "totals": total_by_customer(orders)}
