"""The Great Expectations adapter: the only code of the hub that imports great_expectations.

GX's API moves between releases (0.18 to 1.x renamed nearly everything), so the rest of the
hub speaks plain data: a suites.Suite and a pandas DataFrame in, an outcome.Validation out,
and stored results back into Data Docs. Importing GX takes seconds; import this package
only where a batch is actually validated.
"""

from islandhub.quality.gx.adapter import merge, validate
from islandhub.quality.gx.docs import build_data_docs

__all__ = ["build_data_docs", "merge", "validate"]
