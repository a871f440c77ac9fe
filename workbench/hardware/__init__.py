"""Device profiles and target-device estimates (latency, energy, power, battery life, fit).

Example:
    >>> import workbench
    >>> task = workbench.zoo.load("digits-cnn")
    >>> est = workbench.estimate(task.model, "raspberry-pi-4")   # workbench.devices() lists the profiles
    >>> est.deployable, est.latency_ms_est > 0
    (True, True)
"""

from workbench.hardware.catalog import device, devices, load_profile
from workbench.hardware.duty import DutyCycle, duty_cycle
from workbench.hardware.profile import DTYPES, DeviceProfile
from workbench.hardware.roofline import Estimate, estimate, estimates, layer_table

__all__ = [
    "DTYPES",
    "DeviceProfile",
    "DutyCycle",
    "Estimate",
    "device",
    "devices",
    "duty_cycle",
    "estimate",
    "estimates",
    "layer_table",
    "load_profile",
]
