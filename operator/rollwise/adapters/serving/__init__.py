"""Model-serving backends a ModelRelease drives directly (the template backend goes through a
child Rollout instead): today KServe's ``InferenceService`` (:mod:`.kserve`)."""

from rollwise.adapters.serving.kserve import (
    INFERENCESERVICES,
    InferenceServices,
    inference_service_state,
)

__all__ = ["INFERENCESERVICES", "InferenceServices", "inference_service_state"]
