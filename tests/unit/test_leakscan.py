"""The leak guard's own scanner: it must find a clear national id and a secret, and only those."""

from tests.leakscan import Findings, national_ids_in, secrets_in


def test_finds_valid_national_ids_in_any_case_but_not_masked_or_invalid_ones():
    text = (
        "ok 131052-308T, lower 131052-308t, masked 131052-***T, bad 131052-308U, 2023 010594Y9021"
    )
    assert national_ids_in(text) == ["131052-308T", "131052-308t", "010594Y9021"]


def test_finds_secret_values():
    assert secrets_in("token=demo-crm-token-753;", ["demo-crm-token-753", "other"]) == [
        "demo-crm-token-753"
    ]


def test_findings_name_where_and_never_repeat_the_whole_value():
    findings = Findings()
    findings.scan("t::x [stdout]", "id 131052-308T key s3cr3t-value", ["s3cr3t-value"])
    assert findings.leaks == [
        "t::x [stdout]: national id 131052-*** in clear",
        "t::x [stdout]: secret value s3c... printed",
    ]


def test_log_files_are_scanned(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "task.log").write_text("payload hetu=131052-308T")
    (tmp_path / "a" / "data.csv").write_text("131052-308T")  # data, not a log
    findings = Findings()
    try:
        findings.scan_logs(tmp_path, [])
    finally:
        (tmp_path / "a" / "task.log").unlink()  # or the session's own scan would find it
    assert len(findings.leaks) == 1 and "task.log" in findings.leaks[0]
