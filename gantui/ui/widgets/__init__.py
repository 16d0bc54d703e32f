"""The monitor's panes. Each owns its state, fills it from the typed messages the app's poll
hands it (`gantui.ui.messages`) and renders it; none of them talks to the engine or to another
thread."""

from gantui.ui.widgets.alerts import AlertsPane
from gantui.ui.widgets.metrics import GradientsPane, LossesPane
from gantui.ui.widgets.samples import SamplesPane
from gantui.ui.widgets.status import Banner, KeyBar, StatusLine, TooSmall

__all__ = ["AlertsPane", "Banner", "GradientsPane", "KeyBar", "LossesPane", "SamplesPane",
           "StatusLine", "TooSmall"]
