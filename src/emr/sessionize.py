"""EMR Spark job: events from argv[1] (JSON lines) to sessions in argv[2] (Parquet)."""

import sys

from pyspark.sql import SparkSession

from internal_libs.sessions import add_session_ids

if __name__ == "__main__":
    source, target = sys.argv[1], sys.argv[2]
    spark = SparkSession.builder.appName("sessionize").getOrCreate()
    add_session_ids(spark.read.json(source)).write.mode("overwrite").parquet(target)
    spark.stop()
