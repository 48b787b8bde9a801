"""Settings: every table a scenario may hold, as msgspec Structs, and nothing else.

This package is the bottom layer: it imports nothing of prose_sim outside it, so
any module may import it (``tests/test_architecture.py`` holds it to that). The
built-in methods' and backends' Structs are here; a plugin declares its own
subclass of ``MethodSettings`` or ``ModelSpec``.
"""

from prose_sim.config.budget import BudgetSettings, ShardingSettings
from prose_sim.config.common import (
    LABEL_PATTERN,
    NAME_MAX,
    Framework,
    NonNegative,
    Positive,
    Strict,
)
from prose_sim.config.methods import (
    CipherSettings,
    FixedSubsetSettings,
    IclSettings,
    MethodSettings,
    ProseSettings,
    RetrievalMode,
)
from prose_sim.config.metrics import MetricsSettings
from prose_sim.config.models import (
    BUILTIN_SPECS,
    DEFAULT_BACKEND,
    FaultSettings,
    LocalSpec,
    Models,
    ModelSpec,
    OpenAISpec,
    ScriptedSpec,
)
from prose_sim.config.report import ReportSettings
from prose_sim.config.retrieval import RetrievalSettings
from prose_sim.config.retry import RetryPolicy
from prose_sim.config.run import RunOptions
from prose_sim.config.scenario import PromptSettings, Scenario, TaskSpec

__all__ = [
    "BUILTIN_SPECS",
    "DEFAULT_BACKEND",
    "LABEL_PATTERN",
    "NAME_MAX",
    "BudgetSettings",
    "CipherSettings",
    "FaultSettings",
    "FixedSubsetSettings",
    "Framework",
    "IclSettings",
    "LocalSpec",
    "MethodSettings",
    "MetricsSettings",
    "ModelSpec",
    "Models",
    "NonNegative",
    "OpenAISpec",
    "Positive",
    "PromptSettings",
    "ProseSettings",
    "ReportSettings",
    "RetrievalMode",
    "RetrievalSettings",
    "RetryPolicy",
    "RunOptions",
    "Scenario",
    "ScriptedSpec",
    "ShardingSettings",
    "Strict",
    "TaskSpec",
]
