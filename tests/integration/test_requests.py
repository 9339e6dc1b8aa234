"""Service requests through their states, on SQLite and PostgreSQL: approval plans and queues, the
worker settles the request once, rejection keeps its reason, auto-approval within the offer."""

import json
import threading

import pytest

from orchestrator.actions.request_submit import submit_request
from orchestrator.actions.worker import run_worker
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.workspace import open_workspace


@pytest.fixture
def pool(workspace, ruche):
    w = ["--workspace", str(workspace)]
    assert (
        ruche(*w, "server", "add", "web-1", "--no-connect", "--address", "192.0.2.1", "--memory", "8G").exit_code == 0
    )
    assert (
        ruche(
            *w, "association", "add", "amap", "--name", "AMAP", "--email", "c@amap.fr", "--offer", "association"
        ).exit_code
        == 0
    )
    return w


def submit(workspace, **fields):
    values = {"association": "amap", "service": "radicale", "name": None, "size": "small", "parameters": {},
              "requested_by": "membre@amap.fr"} | fields  # fmt: skip
    return submit_request(workspace, **values)


def test_a_request_is_approved_provisioned_by_the_worker_and_done_exactly_once(pool, workspace, ruche):
    request = submit(workspace, parameters={"admin_user": "camille"})
    assert request["state"] == "pending"
    approved = ruche(*pool, "request", "approve", str(request["id"]), "--json")
    assert approved.exit_code == 0, approved.stderr
    assert json.loads(approved.stdout)["request"]["state"] == "provisioning"
    instance = json.loads(ruche(*pool, "instance", "show", "amap/radicale", "--json").stdout)
    assert instance["state"] == "planned" and instance["parameters"]["admin_user"] == "camille"
    calls = []
    lock = threading.Lock()

    def execute(_workspace, run, _progress):
        with lock:
            calls.append(run.instance_address)
        return True, "run-1", {"status": "successful"}

    run_worker(workspace, once=True, poll_seconds=0.1, execute=execute)
    run_worker(workspace, once=True, poll_seconds=0.1, execute=execute)  # a second worker finds nothing to do
    assert calls == ["amap/radicale"]
    shown = json.loads(ruche(*pool, "request", "show", str(request["id"]), "--json").stdout)
    assert shown["state"] == "done"
    assert [e["kind"] for e in shown["history"]] == [
        "request.pending",
        "request.approved",
        "request.provisioning",
        "request.done",
    ]
    assert shown["history"][-1]["actor"].startswith("worker ")
    (run,) = shown["runs"]
    assert (run["state"], run["attempts"], run["run_id"], run["progress"]) == ("done", 1, "run-1", "finished")
    assert f"run {run['id']} on " in ruche(*pool, "request", "show", str(request["id"])).stdout
    again = ruche(*pool, "request", "approve", str(request["id"]))
    assert again.exit_code == 5 and "is done" in again.stderr


def test_a_rejected_request_keeps_its_reason_and_changes_nothing_else(pool, workspace, ruche):
    request = submit(workspace)
    assert ruche(*pool, "request", "reject", str(request["id"])).exit_code == 2  # --reason is required
    rejected = json.loads(
        ruche(*pool, "request", "reject", str(request["id"]), "--reason", "Pas de place cet hiver", "--json").stdout
    )
    assert rejected["state"] == "rejected" and rejected["reason"] == "Pas de place cet hiver"
    assert json.loads(ruche(*pool, "instance", "list", "--json").stdout) == []
    assert json.loads(ruche(*pool, "queue", "list", "--json").stdout) == []


def test_bad_requests_are_refused_with_nothing_recorded(pool, workspace, ruche):
    for fields, error in [
        ({"parameters": {"admin_user": "x" * 100}}, InvalidInput),  # longer than the parameter's max_length
        ({"name": "../etc"}, InvalidInput),
        ({"size": "huge"}, InvalidInput),
        ({"parameters": {"unknown": "1"}}, InvalidInput),
    ]:
        with pytest.raises(error):
            submit(workspace, **fields)
    submit(workspace)
    with pytest.raises(Conflict):
        submit(workspace)  # same name while the first is open
    assert len(json.loads(ruche(*pool, "request", "list", "--json").stdout)) == 1


def test_an_auto_approving_offer_sends_a_request_within_it_straight_to_a_run(pool, workspace, ruche):
    opened = open_workspace(workspace)
    offers = dict(opened.config.offers)
    offers["association"] = offers["association"].model_copy(update={"auto_approve": True})
    opened.save_config(opened.config.model_copy(update={"offers": offers}))
    request = submit(workspace)
    assert request["state"] == "provisioning" and request["instance"] == "amap/radicale"
    (queued,) = json.loads(ruche(*pool, "queue", "list", "--json").stdout)
    assert queued["request_id"] == request["id"] and queued["instance"] == "amap/radicale"
    big = submit(workspace, service="nextcloud", size="large", parameters={"admin_email": "a@amap.fr"})
    assert big["state"] == "pending"  # beyond the offer: an admin decides


def test_an_auto_approval_that_finds_no_room_leaves_the_request_pending_and_nothing_else(pool, workspace, ruche):
    opened = open_workspace(workspace)
    offers = dict(opened.config.offers)
    offers["association"] = offers["association"].model_copy(update={"auto_approve": True})
    opened.save_config(opened.config.model_copy(update={"offers": offers}))
    assert ruche(*pool, "server", "drain", "web-1").exit_code == 0  # no server takes new instances
    request = submit(workspace)
    assert request["state"] == "pending" and request["instance"] is None
    assert json.loads(ruche(*pool, "instance", "list", "--json").stdout) == []
    assert json.loads(ruche(*pool, "queue", "list", "--json").stdout) == []
    shown = json.loads(ruche(*pool, "request", "show", str(request["id"]), "--json").stdout)
    assert shown["state"] == "pending" and [e["kind"] for e in shown["history"]] == ["request.pending"]
