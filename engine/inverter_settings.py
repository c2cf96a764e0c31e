"""Smart-inverter settings of a generator (IEEE 1547-2018), checked, and the OpenDSS text that defines them.

Settings (`"inverter"` of add_generator, and of a hosting-capacity study's trial generator):
- `mode`: unity, constant_pf, volt_var, volt_watt or volt_var_volt_watt;
- `kva`: the inverter's rating (default: the generator's kW);
- `pf`: constant_pf only, -1..1 with a magnitude of at least 0.05 (below it the vars would be at their limit, 0.44
  x kVA, anyway; at 0 they are undefined), negative absorbs vars;
- `volt_var`: `v`, 4 increasing voltages (pu), and `q`, 4 non-increasing var outputs as fractions of kVA within
  ±0.44 (positive injects);
- `volt_watt`: `v`, 2 increasing voltages (pu), and `p`, 2 non-increasing outputs as fractions of rated power.
Defaults are IEEE 1547-2018's Category B: volt-var Table 8 (0.92/0.98/1.02/1.08 pu -> +0.44/0/0/-0.44 of the
rating, the 44 % being Category B's reactive capability, clause 5.2), volt-watt Table 10 (1.06/1.10 pu -> 1.0/0.2).

The OpenDSS form (docs/inverters.md; OpenDSS's PVSystem and InvControl documentation):
- a PVSystem with irradiance 1, Pmpp = kW, kVA, %cutin = %cutout = 0.1, kvarMax = kvarMaxAbs = 0.44 x kVA,
  WattPriority=no (vars first) and pf (1 unless constant_pf);
- volt-var: an XYcurve of the points with Y as a fraction of kvarMax, and an InvControl with mode=VOLTVAR,
  voltage_curvex_ref=rated, RefReactivePower=VARMAX; volt-watt: mode=VOLTWATT, VoltwattYAxis=PMPPPU; both:
  CombiMode=VV_VW.
- OpenDSS's XYcurve extends its first and last segments in a straight line, where IEEE 1547 holds the output flat
  beyond the first and last points; each curve therefore starts with a point at 0 pu and ends with one at 2 pu
  carrying the first and last outputs.

Everything here is checked numbers formatted by us: no user text reaches the OpenDSS text interface.
"""

from __future__ import annotations

import math
from typing import Any

from engine.errors import SimulationError

MODES = ("unity", "constant_pf", "volt_var", "volt_watt", "volt_var_volt_watt")
VOLT_VAR_MODES = ("volt_var", "volt_var_volt_watt")
VOLT_WATT_MODES = ("volt_watt", "volt_var_volt_watt")
CATEGORY_B_VOLT_VAR = {"v": [0.92, 0.98, 1.02, 1.08], "q": [0.44, 0.0, 0.0, -0.44]}
CATEGORY_B_VOLT_WATT = {"v": [1.06, 1.10], "p": [1.0, 0.2]}
KVAR_MAX_PER_KVA = 0.44  # IEEE 1547-2018 Category B: 44 % of the rating, injecting or absorbing
CUT_IN_OUT_PCT = 0.1
VOLTAGE_RANGE_PU = (0.5, 1.5)  # the curves' own points; their flat ends sit at 0 and 2 pu
CURVE_ENDS_PU = (0.0, 2.0)
MAX_KVA = 100_000.0
MIN_ABS_PF = 0.05

_INVCONTROL_MODE = {
    "volt_var": "mode=VOLTVAR vvc_curve1={vv}",
    "volt_watt": "mode=VOLTWATT voltwatt_curve={vw} VoltwattYAxis=PMPPPU",
    "volt_var_volt_watt": "CombiMode=VV_VW vvc_curve1={vv} voltwatt_curve={vw} VoltwattYAxis=PMPPPU",
}


def normalize_inverter(raw: Any, kw: float, field: str = "inverter", trial: bool = False) -> dict[str, Any] | None:
    """The settings with every default filled in (what journals, exports and rows carry), or a SimulationError
    naming the field (`inverter.volt_var.v[2]`). `trial`: a study's trial generator, whose kVA is its kW."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise SimulationError(f"{field}: expected an object", field=field)
    allowed = {"mode", "pf", "volt_var", "volt_watt"} | (set() if trial else {"kva"})
    unknown = sorted(set(raw) - allowed, key=str)
    if unknown:
        name = str(unknown[0])[:40]
        why = "; the trial generator's kVA is its kW" if trial and name == "kva" else ""
        raise SimulationError(f"{field}.{name}: unknown field{why}", field=f"{field}.{name}")
    mode = raw.get("mode")
    if mode not in MODES:
        shown = repr(mode)[:40] if isinstance(mode, (str, int, float)) or mode is None else type(mode).__name__
        raise SimulationError(f"{field}.mode: expected one of {', '.join(MODES)}, got {shown}", field=f"{field}.mode")
    settings: dict[str, Any] = {"mode": mode}
    if not trial:  # a trial's rating is set per trial (`with_kva`)
        settings["kva"] = _kva(raw.get("kva"), kw, f"{field}.kva")
    _only_with(raw, "pf", mode in ("constant_pf",), "constant_pf", field)
    _only_with(raw, "volt_var", mode in VOLT_VAR_MODES, "volt_var or volt_var_volt_watt", field)
    _only_with(raw, "volt_watt", mode in VOLT_WATT_MODES, "volt_watt or volt_var_volt_watt", field)
    if mode == "constant_pf":
        settings["pf"] = _power_factor(raw.get("pf"), f"{field}.pf")
    if mode in VOLT_VAR_MODES:
        settings["volt_var"] = _curve(raw.get("volt_var"), CATEGORY_B_VOLT_VAR, "q", 4,
                                      (-KVAR_MAX_PER_KVA, KVAR_MAX_PER_KVA), f"{field}.volt_var")
    if mode in VOLT_WATT_MODES:
        settings["volt_watt"] = _curve(raw.get("volt_watt"), CATEGORY_B_VOLT_WATT, "p", 2, (0.0, 1.0),
                                       f"{field}.volt_watt")
    return settings


def _only_with(raw: dict[str, Any], key: str, allowed: bool, modes: str, field: str) -> None:
    if key in raw and raw[key] is not None and not allowed:
        raise SimulationError(f"{field}.{key}: only with mode {modes}, not {raw['mode']}", field=f"{field}.{key}")


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SimulationError(f"{field}: expected a number", field=field)
    if not math.isfinite(value):
        raise SimulationError(f"{field}: expected a finite number, got {value}", field=field)
    return float(value)


def _kva(value: Any, kw: float, field: str) -> float:
    """The rating: given, or the generator's kW."""
    if value is None:
        if not kw > 0:
            raise SimulationError(f"{field}: required when kw is 0 (it defaults to kw)", field=field)
        return float(kw)
    kva = _number(value, field)
    if not 0 < kva <= MAX_KVA:
        raise SimulationError(f"{field}: expected a number above 0 and at most {MAX_KVA:g}, got {kva:g}", field=field)
    return kva


def _power_factor(value: Any, field: str) -> float:
    if value is None:
        raise SimulationError(f"{field}: required with mode constant_pf (-1 to 1, negative absorbs vars)", field=field)
    pf = _number(value, field)
    if not (MIN_ABS_PF <= abs(pf) <= 1):
        raise SimulationError(f"{field}: expected -1 to -{MIN_ABS_PF:g} or {MIN_ABS_PF:g} to 1 (negative absorbs "
                              f"vars), got {pf:g}", field=field)
    return pf


def _curve(raw: Any, default: dict[str, list[float]], output: str, points: int, bounds: tuple[float, float],
           field: str) -> dict[str, list[float]]:
    """A curve's points: increasing voltages within VOLTAGE_RANGE_PU, outputs within bounds and not increasing
    (1547 curves inject or produce less as the voltage rises; a rising curve is a positive feedback)."""
    if raw is None:
        return {"v": list(default["v"]), output: list(default[output])}
    if not isinstance(raw, dict):
        raise SimulationError(f"{field}: expected an object with v and {output}", field=field)
    unknown = sorted(set(raw) - {"v", output}, key=str)
    if unknown:
        name = str(unknown[0])[:40]
        raise SimulationError(f"{field}.{name}: unknown field", field=f"{field}.{name}")
    curve = {}
    for key in ("v", output):
        values = raw.get(key)
        if not isinstance(values, list) or len(values) != points:
            raise SimulationError(f"{field}.{key}: expected a list of {points} numbers", field=f"{field}.{key}")
        curve[key] = [_number(value, f"{field}.{key}[{i}]") for i, value in enumerate(values)]
    low, high = VOLTAGE_RANGE_PU
    for i, v in enumerate(curve["v"]):
        if not low <= v <= high:
            raise SimulationError(f"{field}.v[{i}]: expected {low:g} to {high:g} pu, got {v:g}", field=f"{field}.v[{i}]")
        if i and v <= curve["v"][i - 1]:
            raise SimulationError(f"{field}.v[{i}]: expected increasing voltages, got {v:g} after "
                                  f"{curve['v'][i - 1]:g}", field=f"{field}.v[{i}]")
    for i, y in enumerate(curve[output]):
        if not bounds[0] <= y <= bounds[1]:
            raise SimulationError(f"{field}.{output}[{i}]: expected {bounds[0]:g} to {bounds[1]:g}, got {y:g}",
                                  field=f"{field}.{output}[{i}]")
        if i and y > curve[output][i - 1]:
            raise SimulationError(f"{field}.{output}[{i}]: expected values that do not increase with the voltage, "
                                  f"got {y:g} after {curve[output][i - 1]:g}", field=f"{field}.{output}[{i}]")
    return curve


def with_kva(settings: dict[str, Any], kva: float) -> dict[str, Any]:
    """The same settings at another rating (a study's trial: kVA = trial kW)."""
    return {**settings, "kva": float(kva)}


# ------------------------------------------------------------------------------------------- the OpenDSS form
def pvsystem_properties(kw: float, settings: dict[str, Any]) -> str:
    """The PVSystem's rating and output properties (after `New PVSystem.<name> bus1=… phases=… kv=…`)."""
    kva = settings["kva"]
    kvar_max = KVAR_MAX_PER_KVA * kva
    pf = settings.get("pf", 1.0)
    return (f"irradiance=1 Pmpp={float(kw)!r} kVA={kva!r} %cutin={CUT_IN_OUT_PCT} %cutout={CUT_IN_OUT_PCT} "
            f"kvarMax={kvar_max!r} kvarMaxAbs={kvar_max!r} WattPriority=no pf={pf!r}")


def curve_commands(settings: dict[str, Any], volt_var_name: str, volt_watt_name: str) -> list[str]:
    """The XYcurves of the settings' mode: volt-var Y in fractions of kvarMax, volt-watt Y in fractions of Pmpp,
    each held flat to 0 and 2 pu."""
    commands = []
    if "volt_var" in settings:
        curve = settings["volt_var"]
        commands.append(_xycurve(volt_var_name, curve["v"], [q / KVAR_MAX_PER_KVA for q in curve["q"]]))
    if "volt_watt" in settings:
        curve = settings["volt_watt"]
        commands.append(_xycurve(volt_watt_name, curve["v"], curve["p"]))
    return commands


def _xycurve(name: str, x: list[float], y: list[float]) -> str:
    xs = [CURVE_ENDS_PU[0], *x, CURVE_ENDS_PU[1]]
    ys = [y[0], *y, y[-1]]
    return (f"New XYcurve.{name} npts={len(xs)} Xarray=[{' '.join(repr(float(v)) for v in xs)}] "
            f"Yarray=[{' '.join(repr(float(v)) for v in ys)}]")


def invcontrol_command(name: str, pvsystem: str, settings: dict[str, Any], volt_var_name: str,
                       volt_watt_name: str) -> str | None:
    """The InvControl of the settings' mode over this one PVSystem, or None (unity, constant_pf)."""
    mode = _INVCONTROL_MODE.get(settings["mode"])
    if mode is None:
        return None
    return (f"New InvControl.{name} PVSystemList=[{pvsystem}] {mode.format(vv=volt_var_name, vw=volt_watt_name)} "
            f"voltage_curvex_ref=rated RefReactivePower=VARMAX")
