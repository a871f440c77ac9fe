"""Device profiles and target-device estimates (latency, energy, power, battery life, fit).

Example:
    >>> import workbench
    >>> task = workbench.zoo.load("digits-cnn")
    >>> est = workbench.estimate(task.model, "raspberry-pi-4")   # workbench.devices() lists the profiles
    >>> est.deployable, est.latency_ms_est > 0
    (True, True)
"""

from workbench.devices.estimate import Estimate, calibrate_host, estimate, estimates, layer_table
from workbench.devices.profiles import DTYPES, DeviceProfile, device, devices, load_profile

__all__ = [
    "DTYPES",
    "DeviceProfile",
    "Estimate",
    "calibrate_host",
    "device",
    "devices",
    "estimate",
    "estimates",
    "layer_table",
    "load_profile",
]
