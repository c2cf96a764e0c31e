"""The deck's own load shapes, as OpenDSS's yearly simulation applies them to its loads, for the studies' series.

A load follows its `yearly` shape, else its `daily` one (OpenDSS sets yearly to the daily shape when only daily is
given, and a daily shape repeats every day); a load with neither, or with `status=fixed`, stays at its set-point.
Hour h of the year (0 = the first) is the state OpenDSS's yearly mode solves at time h + 1 h (it steps the clock
before it solves), where a shape's multiplier is `LoadShape.GetMultAtHour`'s (DSS C-API `LoadShape.pas`):
- fixed interval: point round(t / interval), 1-based, wrapping past the last point (a 24-point daily shape at
  interval 1 h repeats each day);
- variable interval (`hour=` arrays): linear between the points, t wrapped at the last point's hour;
- no points: 1; one point: that point.
Only the P multipliers are read: a series scales each load's kW and kvar by the same multiplier, as OpenDSS does
for a shape without `qmult` (docs/studies.md says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.index import values

HOURS_PER_YEAR = 8760


def read_load_shapes(engine: Any, batch: Any) -> dict[str, Any]:
    """`loads`: each load's shape name in the engine's load order (None: it stays at its set-point); `shapes`: each
    named shape's multiplier for every hour of the year."""
    yearly, daily = list(values(batch.Load.Yearly_str)), list(values(batch.Load.Daily_str))
    status = list(values(batch.Load.Status_str))
    loads = [None if state.lower() == "fixed" else ((year or day or "").lower() or None)
             for year, day, state in zip(yearly, daily, status)]
    return {"loads": loads, "shapes": {name: year_of(engine, name) for name in sorted({n for n in loads if n})}}


def year_of(engine: Any, name: str) -> list[float]:
    """A shape's multiplier at each hour of the year (see the module's docstring)."""
    shapes = engine.LoadShape
    shapes.Name(name)
    points = np.asarray(shapes.PMult(), dtype=float)[:max(shapes.Npts(), 0)]
    at = np.arange(1, HOURS_PER_YEAR + 1, dtype=float)  # OpenDSS's clock when it solves hour h: h + 1
    if points.size == 0:
        return [1.0] * HOURS_PER_YEAR
    if points.size == 1:
        return [float(points[0])] * HOURS_PER_YEAR
    interval = shapes.HrInterval()
    if interval > 0:
        index = (np.round(at / interval).astype(int) - 1) % points.size  # numpy rounds half to even, as Pascal
        return points[index].tolist()
    hours = np.asarray(shapes.TimeArray(), dtype=float)[:points.size]
    wrapped = np.where(at > hours[-1], at - np.trunc(at / hours[-1]) * hours[-1], at)
    return np.interp(wrapped, hours, points).tolist()
