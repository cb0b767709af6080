"""The model layer: one ChatModel protocol, several backends, and offline model resolution."""

from recai.llm.base import ChatModel, Completion, Decoding, Generation, Message
from recai.llm.factory import ChatModelConfig, load_chat_model
from recai.llm.resolve import KNOWN_MODELS, ModelNotFoundError, resolve_model
from recai.llm.scripted import ScriptedChatModel
from recai.llm.structured import SchemaError
from recai.llm.usage import meter, track

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
