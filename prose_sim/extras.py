"""The one line that says how to install a missing optional extra.

Every "needs an extra" error goes through ``missing_extra``, so each names the exact command:
in a source checkout (an editable install, as the README's) ``pip install -e '.[extra]'``
(with the checkout's path when run from elsewhere), else the published package's
``pip install 'prose-sim[extra]'``; where the extra brings torch, with the torch pin the
README installs (no extra pins torch: the command line picks the build). Small on purpose:
it can move into ``errors``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from prose_sim.errors import UsageError

_CHECKOUT = Path(__file__).resolve().parents[1]
# the torch the README and .ci/run install (the CPU wheel these machines carry), and the
# extras that bring torch (tests/test_extras.py holds this to pyproject.toml)
TORCH_PIN = "torch==2.13.0"
TORCH_EXTRAS = frozenset({"local", "embed", "bertscore", "test"})


def install_command(extra: str) -> str:
    """The pip command that installs ``extra`` for this copy of prose_sim."""
    pin = f" {TORCH_PIN}" if extra in TORCH_EXTRAS else ""
    if not (_CHECKOUT / "pyproject.toml").is_file():  # an installed wheel
        return f"pip install 'prose-sim[{extra}]'{pin}"
    if Path.cwd().resolve() == _CHECKOUT:
        return f"pip install -e '.[{extra}]'{pin}"
    return f"pip install -e '{_CHECKOUT}[{extra}]'{pin}"


def missing_extra(what: str, extra: str) -> UsageError:
    """The error to raise when ``what`` needs ``extra``, which is not installed."""
    return UsageError(f"{what} needs the {extra} extra: {install_command(extra)}")


def _missing(modules: tuple[str, ...]) -> list[str]:
    """The modules that are not installed, found without importing them (torch's import is
    slow)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(modules: tuple[str, ...], what: str, extra: str = "local") -> None:
    """Raise naming what ``what`` needs when any of ``modules`` is not installed."""
    missing = _missing(modules)
    if missing:
        raise UsageError(
            f"{what} needs {', '.join(missing)}: pip install {' '.join(missing)} "
            f"(or {install_command(extra)})"
        )


def require_torch() -> None:
    """Local models need torch and transformers (the ``local`` extra)."""
    missing = _missing(("torch", "transformers"))
    if missing:
        raise missing_extra(f"local models ({' and '.join(missing)})", "local")
