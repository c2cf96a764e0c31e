"""What the engine's arrays mean: the index maps of one compiled feeder, built once per compile.

Results are read with the engine's batch calls into NumPy arrays; these maps say which node, bus, load, line
or transformer each number belongs to, so a solve's results are mapped with array indexing, not Python loops.

The batch calls flatten every element's numbers in the engine's order: per terminal (`TotalPowers`), or per
conductor of each terminal in turn (`Currents`, `Powers`). Elements differ in shape (a 1-phase line has one
conductor per terminal, a 4-wire line four, a centre-tapped service transformer three terminals), so every slice
is cut from each element's own `NumTerminals`, `NumConductors` and `Phases`, never from an assumed shape.

Voltages are judged on phase nodes only (`phase_node_mask`): a neutral reads near zero volts and is no
undervoltage. Every reading still lists the neutrals' voltages: they are real readings.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from engine.ratings import line_rating_sources
from engine.results import RowLayout, Snapshot

TAP_STEP_PU = 0.00625  # one regulator tap step, pu


class FeederIndex:
    """Names, bus data and conductor-to-node maps of one compiled feeder (generators excepted: they change)."""

    def __init__(self, engine: Any, batch: Any, neighbourhood_buses: Mapping[int, list[str]],
                 derived_distances: Mapping[str, float] | None = None) -> None:
        # The bus list made as a solve makes it (nothing if the deck's Calcvoltagebases made it already): elements a
        # deck defines after its Calcvoltagebases have no nodes before that, and energy meters' zones (distances).
        engine.Text.Command("MakeBusList")
        self.node_names: list[str] = list(engine.Circuit.AllNodeNames())
        self.node_index = {name: i for i, name in enumerate(self.node_names)}
        self.node_bus = [name.split(".")[0] for name in self.node_names]
        self.node_number = [int(name.split(".")[1]) for name in self.node_names]
        self.bus_names: list[str] = list(engine.Circuit.AllBusNames())
        self.bus_info: dict[str, dict[str, Any]] = {}
        for bus in self.bus_names:
            engine.Circuit.SetActiveBus(bus)
            has_xy = engine.Bus.Coorddefined()  # the open-tie stubs 94_open and 300_open have none
            self.bus_info[bus] = {"name": bus, "nodes": sorted(engine.Bus.Nodes()), "kv_base_ln": engine.Bus.kVBase(),
                                   "x": engine.Bus.X() if has_xy else None, "y": engine.Bus.Y() if has_xy else None,
                                   "distance_km": engine.Bus.Distance(), "loads": []}
        # Distances come from the deck's energy meters' zones; a deck with no meter has them all 0, and then the
        # feeder's own (`engine.topology.distances_km`, summed as a meter at the source would sum them) stand in.
        self.distance_source = "meter"
        if derived_distances is not None and not any(info["distance_km"] for info in self.bus_info.values()):
            self.distance_source = "derived"
            for bus, info in self.bus_info.items():
                info["distance_km"] = derived_distances.get(bus, 0.0)

        self.load_names: list[str] = list(batch.Load.Name)
        self.load_bus = [b.split(".")[0].lower() for b in batch.Load.Bus1]
        self.load_conductor_node = np.array(load_conductor_nodes(engine, self.load_names, self.node_index), dtype=int)
        self.bus_neighbourhood = {b: nb for nb, buses in neighbourhood_buses.items() for b in buses}
        for load, bus in zip(self.load_names, self.load_bus):
            self.bus_info[bus]["loads"].append(load)
        for bus, info in self.bus_info.items():
            info["neighbourhood"] = self.bus_neighbourhood.get(bus)
        self.neighbourhood_loads = {
            nb: [i for i, b in enumerate(self.load_bus) if self.bus_neighbourhood.get(b) == nb]
            for nb in neighbourhood_buses}

        self.line_names: list[str] = list(batch.Line.Name)
        self.line_bus1 = [b.split(".")[0].lower() for b in batch.Line.Bus1]
        self.line_bus2 = [b.split(".")[0].lower() for b in batch.Line.Bus2]
        self.line_phases = np.asarray(values(batch.Line.Phases), dtype=int)
        self.line_is_switch = np.asarray(values(batch.Line.Switch), dtype=bool)
        self.line_norm_amps = np.asarray(values(batch.Line.NormAmps), dtype=float)
        self.line_emerg_amps = np.asarray(values(batch.Line.EmergAmps), dtype=float)
        #: "deck" or "default" per line: rated by the deck, or at OpenDSS's default for want of a rating.
        self.line_rating_source = line_rating_sources(batch, self.line_norm_amps, self.line_emerg_amps)
        self.line_terminals = ElementShape(np.asarray(values(batch.Line.NumTerminals), dtype=int),
                                           np.asarray(values(batch.Line.NumConductors), dtype=int), self.line_phases)
        self.line_term1_conductors, self.line_segment_starts = self.line_terminals.terminal1_phase_conductors()

        #: True for the nodes whose voltage is judged against the limits (see `phase_nodes`).
        self.phase_node_mask = phase_nodes(self.node_bus, self.node_number, self.bus_info)
        self.layout = RowLayout(
            node_bus=self.node_bus, node_number=self.node_number, line_names=self.line_names,
            line_bus1=self.line_bus1, line_bus2=self.line_bus2, line_phases=self.line_phases.tolist(),
            line_current_starts=self.line_segment_starts.tolist(),
            line_current_ends=np.cumsum(self.line_phases).tolist(), line_switch=self.line_is_switch.tolist(),
            line_norm_amps=self.line_norm_amps.tolist(), line_emerg_amps=self.line_emerg_amps.tolist(),
            line_rating_source=self.line_rating_source,
            node_is_phase=self.phase_node_mask.tolist())
        for template in ("bus_details_table", "line_flows_table", "line_number_order"):
            getattr(self.layout, template)  # build them now, not on the first request
        # (transformer, winding) of each regulator control, to save and restore taps around a change, and the tap
        # step of that winding ((MaxTap - MinTap) / NumTaps: 0.00625 pu for the usual 32 steps over +-10 %).
        self.regulated_windings = []
        self.regulated_tap_steps: list[float] = []
        for control in engine.RegControls.AllNames():
            engine.RegControls.Name(control)
            transformer, winding = engine.RegControls.Transformer(), engine.RegControls.Winding()
            self.regulated_windings.append((transformer, winding))
            engine.Transformers.Name(transformer)
            engine.Transformers.Wdg(winding)
            taps, span = engine.Transformers.NumTaps(), engine.Transformers.MaxTap() - engine.Transformers.MinTap()
            self.regulated_tap_steps.append(round(span / taps, 12) if taps else TAP_STEP_PU)

        # Transformers of 2 or 3 windings (a centre-tapped service transformer has 3 terminals). Loading is
        # terminal 1's phase currents against NormAmps, which OpenDSS derives from winding 1 alone (NormHkVA,
        # by default 110 % of winding 1's kVA, per phase, over winding 1's phase-to-neutral or, delta,
        # line-to-line/sqrt(3) voltage): the current rating of terminal 1's conductors, whatever the windings.
        self.transformer_names: list[str] = list(batch.Transformer.Name)
        self.transformer_norm_amps = np.asarray(values(batch.Transformer.NormAmps), dtype=float)
        self.transformer_buses = [[b.split(".")[0].lower() for b in buses] for buses in values(batch.Transformer.Buses)]
        self.transformer_kva = [float(k[0]) for k in values(batch.Transformer.kVAs)]
        self.transformer_terminals = ElementShape(
            np.asarray(values(batch.Transformer.NumTerminals), dtype=int),
            np.asarray(values(batch.Transformer.NumConductors), dtype=int),
            np.asarray(values(batch.Transformer.Phases), dtype=int))
        self.transformer_term1_conductors, self.transformer_segment_starts = \
            self.transformer_terminals.terminal1_phase_conductors()


class ElementShape:
    """Where each element of one class starts in the batch calls' flat arrays, from its own terminal, conductor
    and phase counts (any of them may differ from element to element)."""

    def __init__(self, terminals: np.ndarray, conductors: np.ndarray, phases: np.ndarray) -> None:
        self.terminals, self.conductors, self.phases = terminals, conductors, phases
        #: Each element's first entry among per-terminal numbers (`TotalPowers`).
        self.terminal_starts = starts(terminals)
        #: Each element's first entry among per-conductor numbers (`Currents`, `Powers`).
        self.conductor_starts = starts(terminals * conductors)

    def terminal1_phase_conductors(self) -> tuple[np.ndarray, np.ndarray]:
        """The positions of terminal 1's phase conductors among per-conductor numbers (each element's first
        `Phases` entries: its neutral conductors and other terminals left out), and where each element's run
        starts among them."""
        runs = starts(self.phases)
        within = np.arange(int(self.phases.sum()), dtype=np.intp) - np.repeat(runs, self.phases)
        return np.repeat(self.conductor_starts, self.phases) + within, runs

    def summed_over_terminals(self, per_terminal: np.ndarray) -> np.ndarray:
        """Each element's per-terminal numbers added up (the element's losses, from `TotalPowers`)."""
        if not len(self.terminal_starts):
            return np.zeros(0, dtype=per_terminal.dtype)
        return np.add.reduceat(per_terminal, self.terminal_starts)


def starts(counts: np.ndarray) -> np.ndarray:
    """Where each run of `counts` entries starts in their concatenation (empty for no runs)."""
    return (np.cumsum(counts) - counts).astype(np.intp)


def phase_nodes(node_bus: list[str], node_number: list[int], bus_info: Mapping[str, Mapping[str, Any]]
                ) -> np.ndarray:
    """Which nodes carry a phase, the ones whose voltage is judged: nodes 1 to 3 of a bus with a voltage base.
    OpenDSS numbers phases 1, 2, 3 and a modelled neutral 4 and up (a split-phase secondary's hot legs are 1 and 2;
    ground, node 0, is never among the engine's nodes); a bus without a voltage base reads in volts, not pu.
    The engine cannot tell more: a line with its neutral kept (an unreduced geometry) counts every conductor as a
    phase, so a deck that numbers a neutral 1 to 3 has it judged as one."""
    return np.array([1 <= number <= 3 and bus_info[bus]["kv_base_ln"] > 0
                     for bus, number in zip(node_bus, node_number)], dtype=bool)


def conductor_node_index(engine: Any, element: str, node_index: Mapping[str, int]) -> list[int]:
    """Global node index of each conductor of an element (-1 for ground), in the engine's order."""
    engine.Circuit.SetActiveElement(element)
    return active_conductor_nodes(engine, node_index)


def load_conductor_nodes(engine: Any, load_names: list[str], node_index: Mapping[str, int]) -> list[int]:
    """conductor_node_index of every load, in order, each made active by its position (Loads.Idx, which counts
    disabled loads too) rather than by name: OpenDSS finds a name by searching, about 95 us a load on a deck of
    52,000 (5 s in all, growing as the square of the loads), against 2 us by position."""
    out: list[int] = []
    for position, name in enumerate(load_names, start=1):
        engine.Loads.Idx(position)
        if engine.CktElement.Name().lower() != f"load.{name}".lower():  # not the batch's order: by name then
            engine.Circuit.SetActiveElement(f"Load.{name}")
        out += active_conductor_nodes(engine, node_index)
    return out


def active_conductor_nodes(engine: Any, node_index: Mapping[str, int]) -> list[int]:
    """Global node index of each conductor of the active element (-1 for ground), in the engine's order."""
    buses = engine.CktElement.BusNames()
    conductors = engine.CktElement.NumConductors()
    order = engine.CktElement.NodeOrder()
    result = []
    for term, bus in enumerate(buses):
        bus_name = bus.split(".")[0].lower()
        for k in range(conductors):
            node = order[term * conductors + k]
            result.append(node_index.get(f"{bus_name}.{node}", -1) if node else -1)
    return result


def values(batch_property: Any) -> Any:
    """altdss exposes some batch properties as callables and some as plain lists."""
    return batch_property() if callable(batch_property) else batch_property


def read_snapshot(engine: Any, batch: Any, index: FeederIndex, generator_conductor_node: np.ndarray,
                  sequence: int, voltage_limits_pu: tuple[float, float], vmag_pu: np.ndarray,
                  inverter_conductor_node: np.ndarray | None = None) -> Snapshot:
    """Read the solved state with batch calls into one Snapshot (vmag_pu: what the solve check already read).
    Inverter generators are PVSystems (`inverter_conductor_node`, None when the engine has none): their output
    counts as generation at their nodes, and `inverter_power` holds each one's total in the engine's order."""
    n_nodes = len(index.node_names)
    volts = np.asarray(engine.Circuit.AllBusVolts()).view(complex)
    vangle = np.degrees(np.angle(volts))

    # The deck's loads are the first ones (studies' trial loads come after them: `engine.trial_loads`).
    load_powers = np.asarray(values(batch.Load.Powers))[:index.load_conductor_node.size]
    load_p, load_q = sum_per_node(index.load_conductor_node, load_powers, n_nodes)
    gen_p, gen_q = np.zeros(n_nodes), np.zeros(n_nodes)
    generator_totals = np.zeros(0, dtype=complex)
    if len(generator_conductor_node):
        generator_totals = -np.asarray(values(batch.Generator.TotalPowers))
        gen_p, gen_q = sum_per_node(generator_conductor_node,
                                     -np.asarray(values(batch.Generator.Powers)), n_nodes)
    inverter_totals = np.zeros(0, dtype=complex)
    if inverter_conductor_node is not None and len(inverter_conductor_node):
        inverter_totals = -np.asarray(values(batch.PVSystem.TotalPowers))
        inverter_p, inverter_q = sum_per_node(inverter_conductor_node,
                                              -np.asarray(values(batch.PVSystem.Powers)), n_nodes)
        gen_p, gen_q = gen_p + inverter_p, gen_q + inverter_q

    line_terminal_powers = np.asarray(values(batch.Line.TotalPowers))
    line_p1 = line_terminal_powers[index.line_terminals.terminal_starts]
    line_losses = index.line_terminals.summed_over_terminals(line_terminal_powers).real
    line_currents, line_loading, xf_loading = loadings(batch, index)

    xf_terminal_powers = np.asarray(values(batch.Transformer.TotalPowers))
    xf_losses = index.transformer_terminals.summed_over_terminals(xf_terminal_powers).real  # every winding

    source_kw, source_kvar = (-x for x in engine.Circuit.TotalPower())
    losses_w, losses_var = engine.Circuit.Losses()
    arrays = {"vmag_pu": vmag_pu, "vangle_deg": vangle, "load_kw": load_p, "load_kvar": load_q,
              "gen_kw": gen_p, "gen_kvar": gen_q, "line_p_kw": line_p1.real, "line_q_kvar": line_p1.imag,
              "line_currents_a": line_currents, "line_loading_pct": line_loading,
              "line_losses_kw": line_losses, "transformer_loading_pct": xf_loading,
              "generator_power": generator_totals, "inverter_power": inverter_totals,
              "transformer_losses_kw": xf_losses}
    sections = {
        "power_summary": {
            "converged": True,
            "total_circuit_power_kW": source_kw,
            "total_circuit_power_kVAR": source_kvar,
            "total_load_kW": float(load_p.sum()),
            "total_load_kVAR": float(load_q.sum()),
            "total_generation_kW": float(gen_p.sum()),
            "total_generation_kVAR": float(gen_q.sum()),
            "total_losses_kW": losses_w / 1000.0,
            "total_losses_kVAR": losses_var / 1000.0,
        },
        "voltage_profile": voltage_profile(vmag_pu, index.phase_node_mask),
        "losses": {
            "total_kW": losses_w / 1000.0,
            "total_kVAR": losses_var / 1000.0,
            "lines_kW": float(line_losses.sum()),
            "transformers_kW": float(xf_losses.sum()),
            "percent_of_input": 100.0 * losses_w / 1000.0 / source_kw if source_kw > 0 else None,
        },
    }
    violations = find_violations(index, arrays, source_kw, voltage_limits_pu)
    sections["violations"] = violations
    summary = sections["power_summary"]
    summary["voltage_violations"] = len(violations["voltage"])
    summary["thermal_violations"] = len(violations["thermal"])
    summary["reverse_power"] = bool(violations["reverse_power"])
    return Snapshot(sequence, index.layout, arrays, sections)


def voltage_profile(vmag_pu: np.ndarray, phase_node: np.ndarray) -> dict[str, float | None]:
    """Lowest, highest and mean voltage of the phase nodes (None for a feeder without any)."""
    judged = vmag_pu if phase_node.all() else vmag_pu[phase_node]
    if not judged.size:
        return {"min_voltage_pu": None, "max_voltage_pu": None, "avg_voltage_pu": None}
    return {"min_voltage_pu": float(judged.min()), "max_voltage_pu": float(judged.max()),
            "avg_voltage_pu": float(judged.mean())}


def loadings(batch: Any, index: FeederIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Terminal-1 phase current magnitudes of the lines, and the loading (% of normal rating, highest phase) of
    every line and transformer. Complex currents and np.abs: a third of the engine's time for CurrentsMagAng."""
    line_currents = np.abs(np.asarray(values(batch.Line.Currents))[index.line_term1_conductors])
    line_loading = percent_of_rating(highest_per_element(line_currents, index.line_segment_starts),
                                     index.line_norm_amps)
    xf_currents = np.abs(np.asarray(values(batch.Transformer.Currents))[index.transformer_term1_conductors])
    xf_loading = percent_of_rating(highest_per_element(xf_currents, index.transformer_segment_starts),
                                   index.transformer_norm_amps)
    return line_currents, line_loading, xf_loading


def percent_of_rating(hundred_x_current: np.ndarray, rating: np.ndarray) -> np.ndarray:
    """Loading in % of the rating; NaN (null in answers, never a thermal violation) for an element rated 0 A: a line
    on a geometry whose wires give no rating has none at all, and OpenDSS's 400 A default does not apply to it."""
    return np.divide(hundred_x_current, rating, out=np.full(len(rating), np.nan), where=rating > 0)


def highest_per_element(currents: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """100 x each element's highest phase current (the numerator of its loading, in %); empty for none."""
    if not len(starts):
        return np.zeros(0)
    return 100.0 * np.maximum.reduceat(currents, starts)


def read_limits(engine: Any, batch: Any, index: FeederIndex, has_generators: bool, vmag_pu: np.ndarray,
                has_inverters: bool = False) -> dict[str, Any]:
    """A lean reading of a solved state for studies (a hosting-capacity trial, an hour of a series): what limits
    are checked against and the totals an hour reports, without the per-node and per-line tables."""
    _, line_loading, xf_loading = loadings(batch, index)
    source_kw, source_kvar = (-x for x in engine.Circuit.TotalPower())
    losses_w, _ = engine.Circuit.Losses()
    generation = -np.asarray(values(batch.Generator.TotalPowers)).real.sum() if has_generators else 0.0
    if has_inverters:  # PVSystems (inverter generators)
        generation += -np.asarray(values(batch.PVSystem.TotalPowers)).real.sum()
    return {"vmag_pu": vmag_pu, "line_loading_pct": line_loading, "transformer_loading_pct": xf_loading,
            "source_kw": source_kw, "source_kvar": source_kvar, "losses_kw": losses_w / 1000.0,
            "load_kw": float(np.asarray(values(batch.Load.TotalPowers)).real.sum()), "generation_kw": float(generation)}


def find_violations(index: FeederIndex, arrays: dict[str, np.ndarray], source_kw: float,
                    voltage_limits_pu: tuple[float, float]) -> dict[str, Any]:
    """Phase nodes outside the voltage limits (a neutral's near-zero volts are no undervoltage), lines and
    transformers above their normal rating, reverse power."""
    low, high = voltage_limits_pu
    vmag = arrays["vmag_pu"]
    outside = np.flatnonzero(((vmag < low) | (vmag > high)) & index.phase_node_mask)
    # Python floats first (tolist): a feeder can have thousands of nodes outside, and numpy scalars per row cost
    # more than the rows (16 ms an answer on a 20,000-node synthetic feeder).
    voltage = [
        {"element": f"Bus.{index.node_bus[i]}", "node": index.node_number[i], "value_pu": v,
         "limit_pu": low if v < low else high, "kind": "undervoltage" if v < low else "overvoltage"}
        for i, v in zip(outside.tolist(), vmag[outside].tolist())]
    thermal = [
        {"element": f"Line.{index.line_names[i]}", "value_pct": float(arrays["line_loading_pct"][i]),
         "limit_pct": 100.0}
        for i in np.flatnonzero(arrays["line_loading_pct"] > 100.0)]
    thermal += [
        {"element": f"Transformer.{index.transformer_names[i]}",
         "value_pct": float(arrays["transformer_loading_pct"][i]), "limit_pct": 100.0}
        for i in np.flatnonzero(arrays["transformer_loading_pct"] > 100.0)]
    reverse = ({"element": "Vsource.source", "value_kW": source_kw, "limit_kW": 0.0}
               if source_kw < 0 else None)
    return {"voltage_limits_pu": [low, high], "voltage": voltage, "thermal": thermal,
            "reverse_power": reverse}


def sum_per_node(conductor_node: np.ndarray, powers: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Add per-conductor powers into their nodes (-1 = ground, dropped): the kW and kvar at each bus node."""
    connected = conductor_node >= 0
    nodes, values = conductor_node[connected], powers[connected]
    return (np.bincount(nodes, weights=values.real, minlength=n_nodes),
            np.bincount(nodes, weights=values.imag, minlength=n_nodes))
