"""Every stateful thing declares its lifecycle once and moves through the one writer, ``move``.

The "only writer" rule is proven by reading the code with ``ast``: no assignment to a declared
state attribute anywhere but ``caturactl/core/lifecycle.py``, and constructors and INSERTs only
with an initial state. The AST has no types, so attributes are matched by name: ``x.status =``
is refused whatever ``x`` is. Not seen: a state written through ``**kwargs``, a ``setattr`` whose
attribute name is computed, rows given as parameter dicts to ``execute`` (executemany, ORM
bulk updates by primary key), and raw SQL text.
"""

from __future__ import annotations

import ast
import enum
import importlib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

import caturactl.model as model
from caturactl.core.db import Base, make_engine, make_sessionmaker
from caturactl.core.errors import ConflictError, StateError
from caturactl.core.events import Event, EventKind
from caturactl.core.lifecycle import LIFECYCLES, Lifecycle, move
from caturactl.jobs.models import JOB_RUN, JobRun
from caturactl.orders.tickets import TICKET, Ticket
from caturactl.outbox.models import OUTBOX, OutboxMessage
from caturactl.outbox.service import enqueue

ROOT = Path(__file__).resolve().parents[2]
WRITER = "caturactl/core/lifecycle.py"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


# --- reading the code -------------------------------------------------------------------------

def _sources() -> list[tuple[str, str, ast.Module]]:
    """(path, module name, tree) of every module under caturactl/ and connectors/."""
    found = []
    for top in ("caturactl", "connectors"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
            found.append((str(rel), name, ast.parse(path.read_text(encoding="utf-8"), str(rel))))
    return found


SOURCES = _sources()


def _declared() -> dict[str, Lifecycle]:
    """Every declaration: the modules that call ``Lifecycle(...)`` are imported, so they register."""
    for _, name, tree in SOURCES:
        if any(isinstance(n, ast.Call) and _name(n.func) == "Lifecycle" for n in ast.walk(tree)):
            importlib.import_module(name)
    return dict(LIFECYCLES)


def _name(node: ast.AST) -> str | None:
    """``f`` for ``f`` and for ``a.b.f``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _targets(node: ast.AST):
    if isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from _targets(elt)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)
    else:
        yield node


def _root_call(node: ast.AST) -> ast.Call | None:
    """The call a method chain starts with: ``update(M)`` in ``update(M).where(…).values(…)``."""
    while True:
        if isinstance(node, ast.Call):
            inner = node.func.value if isinstance(node.func, ast.Attribute) else None
            if inner is None or not isinstance(inner, (ast.Call, ast.Attribute)):
                return node
            node = inner
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return None


class Resolver:
    """The value of a constant, a name or a dotted name as the module sees it (None: unknown)."""

    def __init__(self, module: str):
        self.module = module
        self._globals: dict | None = None

    def __call__(self, node: ast.AST):
        if isinstance(node, ast.Constant):
            return node.value
        chain = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        if self._globals is None:
            self._globals = vars(importlib.import_module(self.module))
        value = self._globals.get(node.id)
        for attr in reversed(chain):
            value = getattr(value, attr, None)
        return value.value if isinstance(value, enum.Enum) else value


def writes_of_state(tree: ast.Module, path: str, declared: dict[str, Lifecycle], resolve) -> list[str]:
    """Every place in ``tree`` that assigns a declared state other than by ``move``."""
    watched = {lc.attribute for lc in declared.values()}
    found = []

    def initial(lc: Lifecycle, value_node: ast.AST) -> bool:
        return resolve(value_node) in {s.value for s in lc.initial}

    for node in ast.walk(tree):
        where = f"{path}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in (t for tt in targets for t in _targets(tt)):
                if isinstance(t, ast.Attribute) and t.attr in watched:
                    found.append(f"{where}: assigns .{t.attr}")
        elif isinstance(node, ast.Call):
            fname = _name(node.func)
            if fname in ("setattr", "__setattr__", "set_committed_value", "set_attribute") and len(node.args) >= 2:
                attr = node.args[1]
                if isinstance(attr, ast.Constant) and attr.value in watched:
                    found.append(f"{where}: {fname}(…, {attr.value!r}, …)")
            if fname in declared:  # a constructor: an initial state only
                lc = declared[fname]
                for kw in node.keywords:
                    if kw.arg == lc.attribute and not initial(lc, kw.value):
                        found.append(f"{where}: {fname}({kw.arg}=…) with a state that is not initial")
            if fname == "values" and isinstance(node.func, ast.Attribute):
                root = _root_call(node.func.value)
                stmt = _name(root.func) if root is not None else None
                if stmt not in ("update", "insert"):
                    continue
                target = _name(root.args[0]) if root.args else None
                given = [(kw.arg, kw.value) for kw in node.keywords if kw.arg]
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        given += [(k.value if isinstance(k, ast.Constant) else _name(k), v)
                                  for k, v in zip(arg.keys, arg.values) if k is not None]
                for key, value in given:
                    if key not in watched:
                        continue
                    if stmt == "insert" and target in declared and key == declared[target].attribute:
                        if not initial(declared[target], value):
                            found.append(f"{where}: insert({target}).values({key}=…) not initial")
                    else:
                        found.append(f"{where}: {stmt}({target}).values({key}=…)")
    return found


def test_every_stateful_thing_declares_its_lifecycle():
    declared = {lc.name: lc for lc in _declared().values()}
    assert set(declared) >= {"order", "delivery", "outbox", "ticket", "review_request", "job_run", "inbound_file"}
    for lc in declared.values():
        cls = getattr(model, lc.model)  # a mapped class, with the attribute that holds the state
        assert hasattr(cls, lc.attribute), lc
        reachable, todo = set(lc.initial), list(lc.initial)
        while todo:
            for nxt in lc.moves[todo.pop()] - reachable:
                reachable.add(nxt)
                todo.append(nxt)
        assert reachable == set(lc.states), f"{lc.name}: unreachable {set(lc.states) - reachable}"


def test_nothing_but_the_lifecycle_writer_assigns_a_declared_state():
    declared = _declared()
    found = []
    for path, name, tree in SOURCES:
        if path != WRITER:
            found += writes_of_state(tree, path, declared, Resolver(name))
    assert found == []  # that the reader is not blind: test_the_reader_finds_each_kind_of_write


def test_the_reader_finds_each_kind_of_write():
    code = '''
msg.status = "done"
msg.status, msg.attempts = DONE, 0
run.state += "x"
setattr(ticket, "status", "resolved")
session.execute(update(OutboxMessage).where(OutboxMessage.id == 1).values(status="done"))
session.execute(update(model).values({OutboxMessage.status: "failed"}))
Ticket(kind="triage", status="resolved")
insert(OutboxMessage).values(key="k", status=DONE)
Ticket(kind="triage", status=OPEN)
insert(OutboxMessage).values(key="k", status="pending")
JobRun(job="j", state=RUNNING)
Address(state="Bayern")
ok = msg.status == "done"
'''
    names = {"DONE": "done", "OPEN": "open", "RUNNING": "running"}

    def resolve(node):
        return node.value if isinstance(node, ast.Constant) else names.get(getattr(node, "id", None))

    found = writes_of_state(ast.parse(code), "x.py", _declared(), resolve)
    assert sorted(int(f.split(":")[1]) for f in found) == [2, 3, 4, 5, 6, 7, 8, 9]


# --- the mechanism ----------------------------------------------------------------------------

@pytest.fixture
def session():
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    s = make_sessionmaker(engine)()
    yield s
    s.close()


def _message(session) -> OutboxMessage:
    enqueue(session, "upload:L000001", "upload", "dhl", {"delivery_id": 1})
    session.commit()
    return session.scalar(select(OutboxMessage))


def _events(session) -> list[tuple]:
    return session.execute(select(Event.kind, Event.subject, Event.subject_id, Event.from_state, Event.to_state,
                                  Event.why, Event.data).order_by(Event.id)).all()


def test_a_move_records_one_event_naming_its_subject(session):
    msg = _message(session)
    move(session, msg, "done", "sent to dhl", kind=EventKind.OUTBOX_SENT, outbox=msg.id)
    session.commit()
    assert session.scalar(select(OutboxMessage.status)) == "done"
    assert _events(session) == [("outbox_sent", "outbox", msg.id, "pending", "done", "sent to dhl",
                                 {"outbox": msg.id})]


def test_a_disallowed_move_raises_and_changes_nothing(session):
    t = Ticket(kind="triage", text="check the address")
    session.add(t)
    session.commit()
    move(session, t, "resolved", "checked")
    session.commit()
    with pytest.raises(StateError, match=r"T1: cannot go from resolved to open"):
        move(session, t, "open", "again")
    with pytest.raises(StateError, match="'reopened' is not a state of a ticket"):
        move(session, t, "reopened", "again")
    session.commit()
    session.expire_all()
    assert t.status == "resolved"
    assert [(e.from_state, e.to_state, e.subject, e.subject_id) for e in session.scalars(select(Event))] == \
        [("open", "resolved", "ticket", t.id)]


def test_a_new_thing_starts_only_in_an_initial_state(session):
    t = Ticket(kind="triage", status=None)
    session.add(t)
    with pytest.raises(StateError, match="cannot go from new to resolved"):
        move(session, t, "resolved", "never opened")
    move(session, t, "open", "opened")
    session.commit()
    assert t.status == "open" and session.scalar(select(Event.to_state)) == "open"


def test_a_row_another_run_moved_first_is_not_moved_again(session):
    msg = _message(session)
    # Another run fails it behind this session's back (the loaded message still says pending).
    n = session.execute(OUTBOX.claim_update(OutboxMessage, OutboxMessage.id == msg.id, to="failed")).rowcount
    assert n == 1 and msg.status == "pending"
    with pytest.raises(ConflictError, match="moved it from pending to failed first"):
        move(session, msg, "done", "sent")
    assert _events(session) == []


def test_a_claim_condition_that_no_longer_holds_stops_the_move(session):
    run = JobRun(job="import", slot_at=T0, runner="a:1:x", host="a", lease_until=T0)
    session.add(run)
    session.commit()
    with pytest.raises(ConflictError, match="no longer held by this run"):
        move(session, run, "succeeded", "done", also=(JobRun.runner == "b:2:y",))
    session.rollback()
    move(session, run, "succeeded", "done", also=(JobRun.runner == "a:1:x",))
    session.commit()
    assert session.scalar(select(JobRun.state)) == "succeeded"


def test_a_claim_update_takes_its_from_states_from_the_table():
    stmt = OUTBOX.claim_update(OutboxMessage, OutboxMessage.kind == "upload", to="done")
    params = stmt.compile().params
    assert sorted(v for vs in params.values() if isinstance(vs, list) for v in vs) == ["failed", "pending"]
    assert "done" in params.values()
    assert JOB_RUN.froms("failed") == {"running"} and TICKET.terminal == {"resolved"}
    with pytest.raises(StateError, match="cannot go from succeeded to failed"):
        JOB_RUN.claim_update(JobRun, to="failed", from_=["succeeded"])


def test_a_table_naming_an_unknown_state_is_refused():
    class Light(str, enum.Enum):
        ON = "on"
        OFF = "off"

    with pytest.raises(ValueError, match="lifecycle light"):
        Lifecycle("light", "Light", Light, {None: {Light.ON}, Light.ON: {"dim"}, Light.OFF: set()})
    with pytest.raises(ValueError, match="lifecycle light"):
        Lifecycle("light", "Light", Light, {None: {Light.ON}, Light.ON: {Light.OFF}})  # no row for off
    assert "Light" not in LIFECYCLES
