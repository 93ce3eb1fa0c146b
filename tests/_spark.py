"""One local SparkSession per test module (``local[2]``, few shuffle partitions), or a skip."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

SPARK_PASSWORD_ENV = "AESHMAC_SPARK_TEST_PASSWORD"
SPARK_PASSWORD = "spark test pässword"


def spark_session(name: str) -> Iterator[Any]:
    """A real local Spark whose workers have ``SPARK_PASSWORD_ENV`` in their environment."""
    pytest.importorskip("pyspark", minversion="4.0")
    from pyspark.sql import SparkSession

    os.environ[SPARK_PASSWORD_ENV] = SPARK_PASSWORD  # the JVM and its Python workers inherit it
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master("local[2]")
        .appName(name)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.executorEnv." + SPARK_PASSWORD_ENV, SPARK_PASSWORD)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()
