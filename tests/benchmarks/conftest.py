"""pytest-benchmark suite (`make bench-pytest`): kept out of `make test`."""
import platform
from pathlib import Path

import pytest
import torch


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch_version"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["mkldnn"] = torch.backends.mkldnn.is_available()
    machine_info["cuda"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    machine_info["platform"] = platform.platform()


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.benchmark_suite)
