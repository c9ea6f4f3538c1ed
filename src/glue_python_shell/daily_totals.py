"""Glue Python shell job: daily totals of the orders passed in --orders (JSON), printed as JSON."""

import json
import sys

from internal_libs.totals import daily_totals


def options(argv):
    """`--key value` pairs, as Glue passes job arguments."""
    pairs = zip(argv[1::2], argv[2::2])
    return {key.lstrip("-"): value for key, value in pairs if key.startswith("--")}


if __name__ == "__main__":
    args = options(sys.argv)
    orders = json.loads(args.get("orders", "[]"))
    print(json.dumps(daily_totals(orders)))
