"""Lambda: validate a batch of raw orders and return the clean ones."""

from internal_libs.orders import parse_order


def handler(event, context):
    orders, rejected = [], []
    for record in event.get("orders", []):
        try:
            order = parse_order(record)
        except ValueError as error:
            rejected.append({"record": record, "error": str(error)})
            continue
        orders.append({"order_id": order.order_id, "customer": order.customer, "amount": str(order.amount)})
    return {"accepted": orders, "rejected": rejected}
