"""The registered model scores a Spark DataFrame through MLflow's own route, ``mlflow.pyfunc.spark_udf``."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from tests.helpers import corpus_slice, train_into_new_store

# The three lines the README shows, with the columns the test reads back.
RESULT_TYPE = "topic string, topic_probability double, tone string, tone_score double, tone_applies boolean"


def _require(missing: str) -> None:
    """Skip where Java or pyspark is absent, except in CI (.ci/run sets NEWSCLF_REQUIRE_SHARED=1 and installs both)."""
    message = f"{missing}; `make test-slow` installs pyspark, and .ci/run a Java runtime"
    if os.environ.get("NEWSCLF_REQUIRE_SHARED") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.slow
def test_the_registered_model_scores_a_spark_dataframe_as_it_scores_in_python(tmp_path, monkeypatch):
    if shutil.which("java") is None:
        _require("no Java runtime (java) on PATH, which Spark needs")
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        _require("pyspark is not installed (the project's spark extra)")
    import mlflow

    from newsclf.loading import load_model

    _, tracking_uri, result = train_into_new_store(tmp_path)
    mlflow.set_tracking_uri(tracking_uri)
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # Spark's Python workers: this environment, with newsclf
    items = corpus_slice(3)
    texts = [item["text"] for item in items]
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        articles = spark.createDataFrame([(item["id"], item["text"]) for item in items], ["id", "text"])
        predict = mlflow.pyfunc.spark_udf(spark, result.model_uri, result_type=RESULT_TYPE, env_manager="local")
        rows = articles.withColumn("prediction", predict("text")).select("id", "prediction.*").collect()
    finally:
        spark.stop()

    expected = load_model(result.model_uri, tracking_uri).predict_frame(texts)
    assert [row["id"] for row in rows] == [item["id"] for item in items]
    assert [row["topic"] for row in rows] == expected["topic"].tolist()
    assert [row["tone"] for row in rows] == expected["tone"].tolist()
    assert [row["tone_applies"] for row in rows] == expected["tone_applies"].tolist()
    for column in ("topic_probability", "tone_score"):
        assert max(abs(row[column] - value) for row, value in zip(rows, expected[column])) < 1e-9
