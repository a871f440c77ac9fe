"""Deployment planning: LLM memory, multi-model schedules with DVFS, fleet plans, over-the-air update size.

Each planner is a function returning ``(pandas.DataFrame, plotly Figure)``:

* `llm_memory` — parameters, weight / KV-cache / workspace memory per bit-width, and how many of each device
  (the device profiles plus 24 / 40 / 80 GB GPUs) hold a transformer;
* `schedule` — several models on one device: utilisation, EDF and rate-monotonic schedulability (bounds,
  response-time analysis and a simulated timeline), average power, and the lowest-energy DVFS point that meets
  every deadline;
* `fleet_plan` — per device class, the best variant of a sweep that meets its budgets, and fleet energy per day;
* `update_size` — bytes to ship when replacing a deployed artefact: full, deflated, binary delta.

Example:
    >>> from workbench import plan
    >>> df, fig = plan.llm_memory(**plan.PRESETS["Llama-2-13B"], bits=(16, 4))
    >>> df["n_gpu-24gb"].tolist()
    [2, 1]
"""

from __future__ import annotations

from workbench.plan.fleet import DeviceClass, fleet_plan
from workbench.plan.llm import GPUS, PRESETS, TransformerShape, llm_memory
from workbench.plan.scheduling import Workload, schedule
from workbench.plan.updates import update_size

__all__ = ["GPUS", "PRESETS", "DeviceClass", "TransformerShape", "Workload", "fleet_plan", "llm_memory",
           "schedule", "update_size"]
