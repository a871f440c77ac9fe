"""The device catalogue: the bundled profiles in `data/devices/`, plus user folders (``$WORKBENCH_DEVICES``).

Example:
    >>> from workbench.hardware import device, devices
    >>> "raspberry-pi-4" in devices(), device("raspberry-pi-4").kind
    (True, 'cpu')
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from workbench.core.errors import WorkbenchError
from workbench.hardware.profile import DeviceProfile, parse_profile, read_yaml


def load_profile(path: str | os.PathLike) -> DeviceProfile:
    """Read and validate one profile file (errors name the file and the field)."""
    path = Path(path)
    return parse_profile(read_yaml(path), where=path.name, name=path.stem, path=path)


def profile_dirs(extra_dirs: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """Where profiles are read from, in order (a later file with the same name replaces an earlier one)."""
    from workbench.core.paths import data_dir

    dirs = [data_dir() / "devices"]
    env = os.environ.get("WORKBENCH_DEVICES", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in (extra_dirs or [])]
    return dirs


def devices(extra_dirs: Iterable[str | os.PathLike] | None = None) -> dict[str, DeviceProfile]:
    """Every device profile by name: bundled ones, ``$WORKBENCH_DEVICES`` folders, then `extra_dirs`.

    Example:
        >>> sorted(workbench.devices())[:3]
        ['coral-edge-tpu', 'esp32-s3', 'host']
    """
    out: dict[str, DeviceProfile] = {}
    for d in profile_dirs(extra_dirs):
        if not d.is_dir():
            if d == profile_dirs()[0]:
                raise WorkbenchError(f"{d}: the bundled device profiles are missing; run from a full checkout.")
            raise WorkbenchError(f"{d}: not a folder of device profiles (from WORKBENCH_DEVICES or extra_dirs).")
        for path in sorted(d.glob("*.yaml")):
            st = path.stat()
            prof = cached_profile(str(path), st.st_mtime_ns, st.st_size)
            if prof.name == "host":  # not cached: this machine's calibration file can change between calls
                from workbench.hardware.host import with_host_facts

                prof = with_host_facts(prof)
            out[prof.name] = prof
    return dict(sorted(out.items()))


@lru_cache(maxsize=256)
def cached_profile(path: str, mtime_ns: int, size: int) -> DeviceProfile:
    """One parsed profile file, cached per file version: dashboards read profiles on every control change, and
    parsing ten YAML files each time cost ~30 ms. An edited file (new modification time or size) is read again.
    Profiles are frozen, so sharing one is safe."""
    return load_profile(path)


def device(name: str | DeviceProfile, extra_dirs: Iterable[str | os.PathLike] | None = None) -> DeviceProfile:
    """One profile by name (a `DeviceProfile` passes through).

    Raises:
        WorkbenchError: unknown name; the message lists the known ones.
    """
    if isinstance(name, DeviceProfile):
        return name
    known = devices(extra_dirs)
    if name not in known:
        raise WorkbenchError(
            f"Unknown device {name!r}. Known devices: {', '.join(known)}. Add your own by dropping a YAML file "
            "(schema: data/devices/README.md) into a folder listed in WORKBENCH_DEVICES."
        )
    return known[name]
