"""A vLLM-compatible simulator server: an OpenAI API whose token timing comes live from the scheduler simulation
of one configuration (``servewise simulate``; see docs/simulator.md)."""

from ._app import create_app
from ._config import SimulatorConfig, config_from_plan, simulator_config
from ._engine import EngineCore, Sequence, StepOutcome
from ._predicted import predicted_point
from ._server import serve, serve_in_background
from ._tokens import CHARS_PER_TOKEN, CHAT_TOKENS_PER_MESSAGE, TOKEN_COUNT_METHOD, text_tokens

__all__ = [
    "CHARS_PER_TOKEN",
    "CHAT_TOKENS_PER_MESSAGE",
    "TOKEN_COUNT_METHOD",
    "EngineCore",
    "Sequence",
    "SimulatorConfig",
    "StepOutcome",
    "config_from_plan",
    "create_app",
    "predicted_point",
    "serve",
    "serve_in_background",
    "simulator_config",
    "text_tokens",
]
