"""MLflow models-from-code entry point: logged as the model's code, so no wrapper is pickled."""

from mlflow.models import set_model

from newsclf.pyfunc import NewsClassifierPyfunc

set_model(NewsClassifierPyfunc())
