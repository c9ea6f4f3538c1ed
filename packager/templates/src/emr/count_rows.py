"""EMR Spark job: count the rows of the JSON lines at argv[1]."""

import sys

from pyspark.sql import SparkSession

if __name__ == "__main__":
    spark = SparkSession.builder.appName("count_rows").getOrCreate()
    print(spark.read.json(sys.argv[1]).count())
    spark.stop()
