"""Daily totals of order records: plain Python, so the job fits a 1/16 DPU Python shell."""

from collections import defaultdict


def daily_totals(records):
    """Sum `amount` per `day`, sorted by day."""
    totals = defaultdict(float)
    for record in records:
        totals[record["day"]] += float(record["amount"])
    return dict(sorted(totals.items()))
