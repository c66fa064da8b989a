"""Data quality: Great Expectations on every mapped batch, a review after publishing, a report.

    settings   the `quality:` block of a system file (gate, checks), parsed and checked
    suites     a stream's checks: from the resident schema, its mapping and its system file
    values     the vectorised rules behind the custom expectations (HETU, Y-tunnus, ...)
    gx/        the Great Expectations adapter, the only code that imports great_expectations
    outcome    what a validation found, as plain data; scores: the shares made of it
    batch      the pipeline's hook: validate what a run landed, keep the result, hold the gate
    review     after publishing: each island's current records; cross and freshness
    results    the dq_results table
    report/    the report for the Chief Digital Officer (HTML in sv, fi, en) and its JSON

This package imports nothing heavy itself: pandas and Great Expectations load only when a
batch is actually validated, so commands that never validate stay quick.
"""
