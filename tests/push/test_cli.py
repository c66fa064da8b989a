"""`islandhub push`: the dry-run diff, delivery and replay at the command line; ids masked."""

from __future__ import annotations

import json

from islandhub.cli import main
from islandhub.privacy.masking import mask_text
from tests.push.conftest import open_world, rows, sync_in_order
from tests.push.world import ANNA, HETUS, TOKEN, person


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_masked(text):
    """No national id in the clear, and never the portal's token."""
    for hetu in HETUS:
        assert hetu not in text
    assert TOKEN not in text


def test_dry_run_prints_the_field_level_diff_masked_and_sends_nothing(world, capsys):
    project, store = open_world(world)
    sync_in_order(project, store)
    code, out, err = run(capsys, "push", "cases", "--dry-run", "--json", "--purpose", "review")
    assert code == 0, err
    assert_masked(out + err)
    [preview] = json.loads(out)["targets"]
    sends = {(s["stream"], s["fields"][0]["after"]): s for s in preview["would_send"]}
    assert len(preview["would_send"]) == 5 and preview["dead"] == 0
    anna_feed = next(
        s
        for s in preview["would_send"]
        if s["stream"] == "feed" and any(f["after"] == "Anna Maria Lindqvist" for f in s["fields"])
    )
    fields = {f["field"]: f for f in anna_feed["fields"]}
    assert fields["hetu"] == {
        "field": "hetu",
        "before": None,
        "after": mask_text(ANNA),
        "changed": True,
    }
    assert fields["born"]["after"] == "12.03.1978" and fields["street"]["after"] == "Iso Kylätie 12"
    mikko_feed = next(
        s for s in preview["would_send"] if any(f["after"] == "Mikko Virtanen" for f in s["fields"])
    )
    assert "street" not in {f["field"] for f in mikko_feed["fields"]}  # turvakielto
    assert sends and world.cases("SELECT count(*) FROM hub_residents") == [(0,)]
    assert {r.status for r in rows(store)} == {"pending"}

    code, out, err = run(capsys, "push", "cases", "--dry-run", "--purpose", "review")
    assert code == 0, err
    assert_masked(out + err)
    assert "cases: would send 5, supersede 0; 0 waiting for a retry, 0 dead" in out
    assert mask_text(ANNA) in out and "Salainen" not in out

    # After a delivery the diff is against what the island got: only the change shows.
    assert run(capsys, "push", "cases")[0] == 0
    world.register(person(ANNA, "Anna Maria", "Lindqvist", "1978-03-12", "Uusi katu 1"))
    sync_in_order(project, store, "population")
    code, out, _ = run(capsys, "push", "cases", "--dry-run", "--json", "--purpose", "review")
    [preview] = json.loads(out)["targets"]
    [send] = preview["would_send"]
    changed = [(f["field"], f["before"], f["after"]) for f in send["fields"] if f["changed"]]
    assert changed == [("street", "Iso Kylätie 12", "Uusi katu 1")]


def test_push_delivers_fails_with_exit_1_and_replay_brings_dead_rows_back(world, capsys):
    project, store = open_world(world)
    sync_in_order(project, store)
    world.portal.down()
    with store.begin() as conn:  # one attempt left: the next failure is the last
        from islandhub.store.tables import outbox

        conn.execute(outbox.update().where(outbox.c.target == "portal").values(attempts=2))
    code, out, err = run(capsys, "push", "portal", "--json")
    assert code == 1
    [report] = json.loads(out)["targets"]
    assert (report["dead"], report["ok"]) == (2, False)
    assert "gave up after 3 attempts" in err
    world.portal.up()
    code, out, _ = run(capsys, "push", "replay", "--target", "portal")
    assert code == 0 and "2 dead row(s) of portal are pending again" in out
    code, out, err = run(capsys, "push", "--all")
    assert code == 0, err
    assert "portal" in out and "cases" in out
    assert {r.status for r in rows(store)} == {"delivered"}
    assert len(world.portal.stored) == 2
    assert_masked(out + err)


def test_bad_push_arguments_exit_2_with_the_reason(world, capsys, monkeypatch):
    monkeypatch.delenv("ISLANDHUB_PURPOSE", raising=False)
    cases = [
        (["push", "nowhere"], "unknown system 'nowhere'; configured systems: cases, population"),
        (["push"], "name the island to push to, or --all"),
        (["push", "portal", "--all"], "name the island to push to, or --all"),
        (["push", "portal", "--target", "cases"], "--target goes with `islandhub push replay`"),
        (["push", "replay", "--target", "nowhere"], "unknown system 'nowhere'"),
        (["push", "replay", "--all"], "replay takes only --target SYSTEM"),
        (["push", "portal", "--dry-run"], "say why you access personal data: --purpose TEXT"),
    ]
    for args, says in cases:
        code, out, err = run(capsys, *args)
        assert code == 2, (args, out, err)
        assert says in " ".join(err.split()), (args, err)
