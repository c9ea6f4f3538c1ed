"""Glue Spark job: total order amount per day, from --source (JSON lines) to --target (Parquet)."""

import sys

from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import functions as F

from internal_libs.cleaning import clean_orders

if __name__ == "__main__":
    args = getResolvedOptions(sys.argv, ["source", "target"])
    spark = GlueContext(SparkContext.getOrCreate()).spark_session
    orders = clean_orders(spark.read.json(args["source"]))
    totals = orders.groupBy("day").agg(F.sum("amount").alias("total"))
    totals.write.mode("overwrite").parquet(args["target"])
