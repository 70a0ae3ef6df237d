"""Point nbval at this folder's sanitizer file unless the command line names another one."""

from pathlib import Path

import pytest

SANITIZE = Path(__file__).with_name("nbval-sanitize.cfg")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "nbval_sanitize_with") and not config.option.nbval_sanitize_with:
        config.option.nbval_sanitize_with = str(SANITIZE)
