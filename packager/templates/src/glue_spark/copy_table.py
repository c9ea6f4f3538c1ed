"""Glue Spark job: copy the JSON lines at --source to Parquet at --target."""

import sys

from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

if __name__ == "__main__":
    args = getResolvedOptions(sys.argv, ["source", "target"])
    spark = GlueContext(SparkContext.getOrCreate()).spark_session
    spark.read.json(args["source"]).write.mode("overwrite").parquet(args["target"])
