"""Overcommit's engine: pure, deterministic, no UI imports.

Public API: Simulation, load_scenario, the commands, Snapshot and report().
"""

from engine.commands import (
    Accepted,
    Command,
    PlaceVM,
    Rejected,
    SetMax,
    SetMin,
    SetShares,
    StartVM,
    StopVM,
    parse_command,
)
from engine.errors import InputError
from engine.events import Event
from engine.report import HostView, Snapshot, VMView
from engine.scenario import ScenarioSpec, load_scenario, parse_scenario
from engine.simulation import InvariantViolation, Simulation

__all__ = [
    "Accepted", "Command", "Event", "HostView", "InputError", "InvariantViolation", "PlaceVM",
    "Rejected", "ScenarioSpec", "SetMax", "SetMin", "SetShares", "Simulation", "Snapshot",
    "StartVM", "StopVM", "VMView", "load_scenario", "parse_command", "parse_scenario",
]
