"""The model layer: one ChatModel protocol, several backends, and offline model resolution.

The names are imported on first access: ``recai --help`` reads the llm commands and their options
without loading a backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recai._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".base": ["ChatModel", "Completion", "Decoding", "Generation", "Message"],
        ".factory": ["ChatModelConfig", "load_chat_model"],
        ".resolve": ["KNOWN_MODELS", "ModelNotFoundError", "resolve_model"],
        ".scripted": ["ScriptedChatModel"],
        ".structured": ["SchemaError"],
        ".usage": ["meter", "track"],
    },
)

__all__ = [
    "KNOWN_MODELS",
    "ChatModel",
    "ChatModelConfig",
    "Completion",
    "Decoding",
    "Generation",
    "Message",
    "ModelNotFoundError",
    "SchemaError",
    "ScriptedChatModel",
    "load_chat_model",
    "meter",
    "resolve_model",
    "track",
]

if TYPE_CHECKING:
    from recai.llm.base import ChatModel, Completion, Decoding, Generation, Message
    from recai.llm.factory import ChatModelConfig, load_chat_model
    from recai.llm.resolve import KNOWN_MODELS, ModelNotFoundError, resolve_model
    from recai.llm.scripted import ScriptedChatModel
    from recai.llm.structured import SchemaError
    from recai.llm.usage import meter, track
