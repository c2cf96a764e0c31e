"""One circuit interface: `OpenDSSCircuit` and the engine-host proxy satisfy `engine.interface`, and neither gains a
public member the interface does not declare (a new read is declared once, in `Circuit`, and the proxy forwards it;
a new in-process verb is declared in `StudyEngine`)."""

from __future__ import annotations

import inspect

import pytest

from engine.interface import FORWARDED, FORWARDED_PROPERTIES, OWN_MEMBERS, Circuit, StudyEngine, declared_members
from engine.pool import PROXY_MEMBERS, HostedCircuit
from simulation_core import OpenDSSCircuit



def public_members(cls: type) -> set[str]:
    """Public names a class defines or inherits, and the attributes it declares for its instances."""
    annotated = {name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", {})}
    return {name for name in set(dir(cls)) | annotated if not name.startswith("_")}


def test_the_proxy_has_exactly_the_interface_and_its_own_bookkeeping():
    assert public_members(HostedCircuit) == set(declared_members(Circuit)) | set(PROXY_MEMBERS)


def test_the_circuit_has_exactly_the_interfaces_members():
    declared = set(declared_members(Circuit)) | set(declared_members(StudyEngine))
    assert public_members(OpenDSSCircuit) == declared


def test_the_forwarded_reads_are_every_interface_member_but_the_state_and_changes():
    assert set(FORWARDED) == set(declared_members(Circuit)) - set(OWN_MEMBERS)
    assert {"buses", "bus", "generators", "customers", "transformer_names"} <= set(FORWARDED)


@pytest.mark.parametrize("name", declared_members(Circuit) + declared_members(StudyEngine))
def test_each_member_has_the_interfaces_signature(name):
    declared = inspect.getattr_static(StudyEngine, name, None) or inspect.getattr_static(Circuit, name, None)
    if declared is None:  # an annotated attribute, set by __init__
        assert name in vars(OpenDSSCircuit)["__annotations__"]
        return
    ours = inspect.getattr_static(OpenDSSCircuit, name)
    assert isinstance(ours, property) == isinstance(declared, property), name
    if not isinstance(declared, property):
        assert inspect.signature(ours).parameters == inspect.signature(declared).parameters, name


def test_every_forwarded_read_asks_the_host_by_its_own_name():
    """The proxy inherits the interface's reads: each sends its own name and its arguments to the host."""
    calls = []

    class Recorder(HostedCircuit):
        def __init__(self) -> None:  # no host: record what would be sent
            pass

        def _call(self, verb, args=()):
            calls.append((verb, args))
            return verb

    proxy = Recorder()
    for name in FORWARDED:
        if name in FORWARDED_PROPERTIES:
            assert getattr(proxy, name) == name
            assert calls.pop() == (name, ())
        else:
            parameters = list(inspect.signature(getattr(Circuit, name)).parameters)[1:]
            arguments = tuple(f"argument {i}" for i in range(len(parameters)))
            assert getattr(proxy, name)(*arguments) == name
            assert calls.pop() == (name, arguments)
    assert not calls


def test_the_interfaces_check_finds_a_member_the_proxy_lacks():
    """The equality above fails when one side gains a member: shown on a class with one more."""
    class Wider(OpenDSSCircuit):
        def new_read(self) -> list:
            return []

    declared = set(declared_members(Circuit)) | set(declared_members(StudyEngine))
    assert public_members(Wider) - declared == {"new_read"}
