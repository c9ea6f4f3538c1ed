"""Sessionisation shared by the EMR jobs: a new session after 30 minutes of silence."""

SESSION_GAP_SECONDS = 30 * 60


def add_session_ids(frame):
    """Number each user's sessions by the gaps between their events' `ts` (epoch seconds)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = Window.partitionBy("user").orderBy("ts")
    gap = F.col("ts") - F.lag("ts").over(by_user)
    starts = F.when(gap.isNull() | (gap > SESSION_GAP_SECONDS), 1).otherwise(0)
    return frame.withColumn("session", F.sum(starts).over(by_user))
