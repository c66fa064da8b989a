"""The mapping engine: declarative YAML mappings turn source records into resident fields."""

from islandhub.mapping.engine import MappedBatch, MappedRecord, Mapping, QuarantinedRecord
from islandhub.mapping.transforms import Noted, TransformError, known_transforms

__all__ = [
    "MappedBatch",
    "MappedRecord",
    "Mapping",
    "Noted",
    "QuarantinedRecord",
    "TransformError",
    "known_transforms",
]
