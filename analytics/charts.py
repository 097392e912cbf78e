"""Bar charts drawn on the server as SVG geometry (the templates only place the shapes)."""

import datetime as dt
import math
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 40
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: dt.date
    value: float
    text: str


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str


@dataclass(frozen=True)
class BarChart:
    chart_id: str
    title: str
    description: str
    unit: str
    x_axis: str
    bars: list[Bar]
    ticks: list[Tick]
    x_labels: list[XLabel]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def y_axis_x(self) -> int:
        return 14

    @property
    def middle_y(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def x_axis_y(self) -> int:
        return self.height - 4

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _compact(value: float, decimals: int) -> str:
    """Axis labels stay short: 1.5k, 2M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return _number(value, decimals)


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}" if decimals else f"{round(value):,}"


def bar_chart(*, chart_id: str, title: str, unit: str, x_axis: str, points: list[tuple[dt.date, float]],
              decimals: int = 0) -> BarChart:
    """One bar per day; y ticks at round numbers; at most MAX_X_LABELS day labels."""
    top_value = _nice_max(max((value for _, value in points), default=0))
    plot_width, plot_height = WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP
    slot = plot_width / max(len(points), 1)
    bars = []
    for index, (day, value) in enumerate(points):
        height = plot_height * value / top_value
        bars.append(Bar(
            x=round(LEFT + index * slot + slot * 0.15, 2), y=round(TOP + plot_height - height, 2),
            width=round(max(slot * 0.7, 1), 2), height=round(height, 2), day=day, value=value,
            text=f"{day:%b} {day.day}: {_number(value, decimals)} {unit}",
        ))
    ticks = [Tick(y=round(TOP + plot_height * (1 - step / 4), 2),
                  text=_compact(top_value * step / 4, decimals if top_value < 4 else 0))
             for step in range(5)]
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    x_labels = [XLabel(x=round(LEFT + index * slot + slot / 2, 2), text=f"{day:%b} {day.day}")
                for index, (day, _) in enumerate(points) if index % every == 0]
    total = sum(value for _, value in points)
    if points and total == 0:
        description = (f"{title} from {points[0][0]:%-d %B %Y} to {points[-1][0]:%-d %B %Y}: "
                       f"no usage in the period.")
    elif points:
        peak_day, peak = max(points, key=lambda point: point[1])
        description = (f"{title} from {points[0][0]:%-d %B %Y} to {points[-1][0]:%-d %B %Y}: "
                       f"{_number(total, decimals)} {unit} in total; the busiest day was "
                       f"{peak_day:%-d %B} with {_number(peak, decimals)} {unit}.")
    else:
        description = f"{title}: no days in the period."
    return BarChart(chart_id=chart_id, title=title, description=description, unit=unit, x_axis=x_axis,
                    bars=bars, ticks=ticks, x_labels=x_labels)
