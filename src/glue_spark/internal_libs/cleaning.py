"""Column clean-up shared by the Glue Spark jobs (pure PySpark expressions)."""


def clean_orders(frame):
    """Drop orders without an id and cast the amount to a double."""
    from pyspark.sql import functions as F

    return frame.where(F.col("id").isNotNull()).withColumn("amount", F.col("amount").cast("double"))
