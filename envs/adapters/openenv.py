"""OpenEnv environment servers as Gymnasium text environments: ``openenv:URL`` (``pip install 'rlvr[openenv]'``).

An OpenEnv server (``openenv-core``'s ``create_app``) hosts one environment behind HTTP: ``GET
/schema`` describes its action and observation, and ``/ws`` (a WebSocket upgrade of the same
HTTP port) holds one stateful session per connection, answering ``{"type": "reset"|"step",
"data": ...}`` with ``{"type": "observation", "data": {"observation", "reward", "done"}}``. (Its
plain ``POST /reset`` and ``POST /step`` build a fresh environment per request, so a multi-turn
episode cannot be played over them.)

``OpenEnvEnv`` plays one session per episode: ``reset`` opens a connection and sends ``reset``
with the seed; each ``step`` sends the model's text as the action's text field (the single
string field of the server's action schema, or ``action_field=``); the observation becomes a
``user`` message (its single string field, ``observation_field=``, or the fields as JSON) and the
server's reward is the step's reward (component ``reward``; ``None`` counts 0). Every exchange has
a deadline (``timeout``) and a size cap (``max_message_bytes``); a server that is down, dies
mid-episode, stalls, or answers garbage raises :class:`OpenEnvError` naming the URL and what
happened, and nothing hangs.

Ids: ``openenv:http://HOST:PORT`` wherever rlvr takes an environment id (``rlvr eval``, ``rlvr
envs show``, training configs); ``gymnasium.make("openenv/Server-v0", url=URL)``; or a name of
one's own, ``register_env("acme/Guess-v0", "rlvr.envs.adapters.openenv:OpenEnvEnv",
kwargs={"url": URL})``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from typing import Any, Mapping, SupportsFloat
from urllib.parse import urlsplit, urlunsplit

import gymnasium as gym
from gymnasium.error import ResetNeeded

from rlvr.envs.core import MAX_CONTENT_CHARS
from rlvr.envs.rewards import Component, Rubric
from rlvr.envs.spaces import ROLES, ChatMessages, UnicodeText
from rlvr.errors import ConfigError, DependencyError, RlvrError
from rlvr.validate import positive_int, positive_number

log = logging.getLogger(__name__)

SCHEME = "openenv"
GENERIC_ID = "openenv/Server-v0"
COMPONENT = "reward"
#: observation fields that are protocol, not content.
_PROTOCOL_FIELDS = ("done", "reward", "metadata")


class OpenEnvError(RlvrError):
    """The OpenEnv server could not be used (down, died, too slow, answered garbage); says which and why."""


def normalize_url(url: Any, field: str = "url") -> str:
    """``url`` as an ``http(s)://host[:port][/path]`` base (no trailing slash); ConfigError otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(field, f"an OpenEnv server URL is required, got {url!r}",
                          "write openenv:http://HOST:PORT, or pass -E url=http://HOST:PORT")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise ConfigError(field, f"{url!r} is not an http(s):// URL of an OpenEnv server", "e.g. openenv:http://127.0.0.1:8000")
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise ConfigError(field, f"{url!r} has a malformed port", "e.g. openenv:http://127.0.0.1:8000") from None
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def url_of_id(env_id: str) -> str:
    """The server URL of an ``openenv:URL`` id (ConfigError naming ``env_id`` when it is not one)."""
    if not env_id.startswith(SCHEME + ":"):
        raise ConfigError("env_id", f"{env_id!r} is not an openenv:URL id")
    return normalize_url(env_id[len(SCHEME) + 1:], field="env_id")


def _websocket_url(base: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, parts.path + "/ws", "", ""))


def text_field(schema: Any, field: str, kind: str) -> str:
    """The name of the one string field of an action/observation JSON schema (protocol fields aside)."""
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(props, Mapping):
        raise OpenEnvError(f"the server's {kind} schema has no properties: {str(schema)[:200]!r}")
    names = [n for n in props if n not in _PROTOCOL_FIELDS]
    strings = [n for n in names if isinstance(props[n], Mapping) and props[n].get("type") == "string"]
    required = [n for n in strings if n in (schema.get("required") or [])]
    pick = required if len(required) == 1 else strings
    if len(pick) == 1:
        return pick[0]
    raise ConfigError(field, f"the server's {kind} has fields {names}, not one text field to use",
                      f"pass -E {field}=NAME (one of {names})")


class OpenEnvEnv(gym.Env[list, str]):
    """One OpenEnv server played as a Gymnasium text environment (see the module docstring).

    Observation: the conversation so far (``{"role", "content"}`` dicts). Action: the model's text.
    ``reset(seed=None, options=None) -> (obs, info)``; ``step(action) -> (obs, reward, terminated,
    truncated, info)`` with ``info["reward_components"] == {"reward": server reward}``; on the last
    step ``info`` has ``success`` (the server ended the episode with a reward of at least
    ``success_threshold``), ``status``
    and ``episode``. Constructing one contacts nothing; the first ``reset`` reads ``/schema``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}
    #: episodes take as many model messages as the server wants (up to ``max_turns``).
    multi_turn = True

    def __init__(
        self,
        url: str | None = None,
        *,
        max_turns: int = 16,
        timeout: float = 60.0,
        max_message_bytes: int = 8 << 20,
        action_field: str | None = None,
        observation_field: str | None = None,
        system_prompt: str | None = None,
        success_threshold: float = 1.0,
        reset_kwargs: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.url = normalize_url(url)
        positive_int("max_turns", max_turns)
        positive_number("timeout", timeout, upper=1e9)
        if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int) or max_message_bytes < 1024:
            raise ConfigError("max_message_bytes", f"must be an integer >= 1024, got {max_message_bytes!r}")
        for name, value in (("action_field", action_field), ("observation_field", observation_field), ("system_prompt", system_prompt)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(name, f"must be a string, got {type(value).__name__}")
        if isinstance(success_threshold, bool) or not isinstance(success_threshold, (int, float)):
            raise ConfigError("success_threshold", f"must be a number, got {success_threshold!r}")
        if reset_kwargs is not None and not isinstance(reset_kwargs, Mapping):
            raise ConfigError("reset_kwargs", f"must be a mapping of reset arguments, got {type(reset_kwargs).__name__}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError("render_mode", f"{render_mode!r} is not supported", f"choose from {self.metadata['render_modes']}")
        try:
            import websockets.sync.client  # noqa: F401
        except ImportError as e:
            raise DependencyError("websockets", "openenv") from e
        self.max_turns = max_turns
        self.timeout = float(timeout)
        self.max_message_bytes = max_message_bytes
        self.action_field = action_field
        self.observation_field = observation_field
        self.system_prompt = system_prompt or None
        self.success_threshold = float(success_threshold)
        self.reset_kwargs = dict(reset_kwargs or {})
        self.render_mode = render_mode
        self.description = f"OpenEnv server at {self.url}"
        self.tasks = f"posed by the server at reset ({self.url})"
        self.rubric = Rubric([Component(COMPONENT, 1.0, help="the server's step reward")])
        self.observation_space = ChatMessages(ROLES, max_content_length=MAX_CONTENT_CHARS)
        self.action_space = UnicodeText(MAX_CONTENT_CHARS)
        self._ws: Any = None
        self._messages: list[dict[str, str]] = []
        self._done = True
        self._turns = 0
        self._return = 0.0
        self._task: dict[str, Any] = {}

    # ------------------------------------------------------------------ identity
    @property
    def env_id(self) -> str:
        """The registered id, or ``openenv:URL`` when made from the generic id or directly."""
        spec_id = self.spec.id if self.spec is not None else None
        return spec_id if spec_id and spec_id != GENERIC_ID else f"{SCHEME}:{self.url}"

    @property
    def max_reward(self) -> float:
        """Unknown in general; the success threshold is what a solved episode's last reward reaches."""
        return self.success_threshold

    # ------------------------------------------------------------------ Gymnasium API
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None) -> tuple[list, dict[str, Any]]:
        """Open a fresh session and reset the server's environment (``seed`` passed through)."""
        super().reset(seed=seed)
        self._disconnect()
        self._discover()
        data = dict(self.reset_kwargs)
        if seed is not None:
            data["seed"] = int(seed)
        if options:
            data.update({k: v for k, v in options.items() if k not in ("index", "task")})
        self._connect()
        result = self._exchange("reset", data)
        text = self._observation_text(result["observation"])
        self._messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
        self._messages.append({"role": "user", "content": text})
        self._turns, self._return, self._done = 0, 0.0, bool(result["done"])
        self._task = {"prompt": text, "reference": None, "metadata": {"url": self.url, "seed": seed}}
        if self._done:
            self._disconnect()
            raise OpenEnvError(f"{self.url}: the server ended the episode at reset; there is nothing to play")
        info = {"task": copy.deepcopy(self._task), "task_id": f"{self.env_id}#seed={seed}", "env_id": self.env_id}
        return copy.deepcopy(self._messages), info

    def step(self, action: str) -> tuple[list, SupportsFloat, bool, bool, dict[str, Any]]:
        """Send the model's text as the action; the server's observation, reward and done come back."""
        if self._done or self._ws is None:
            raise ResetNeeded("the episode has ended (or never started): call reset() before step()")
        if not isinstance(action, str):
            raise TypeError(f"an action is the model's message text (str), got {type(action).__name__}")
        action = action[:MAX_CONTENT_CHARS].encode("utf-8", "replace").decode("utf-8")
        self._turns += 1
        self._messages.append({"role": "assistant", "content": action})
        try:
            result = self._exchange("step", {self.action_field: action})
        except BaseException:
            self._done = True  # the session is gone or unusable: the next call must reset
            self._disconnect()
            raise
        reward = result["reward"]
        self._return += reward
        terminated = bool(result["done"])
        truncated = not terminated and self._turns >= self.max_turns
        text = self._observation_text(result["observation"])
        if text:
            self._messages.append({"role": "user", "content": text})
        info: dict[str, Any] = {"reward_components": {COMPONENT: reward}, "reward_weights": {COMPONENT: 1.0}, "turn": self._turns}
        if terminated or truncated:
            self._done = True
            self._disconnect()
            success = terminated and reward >= self.success_threshold
            info["success"] = success
            info["status"] = "ok" if success else ("wrong" if terminated else "no_answer")
            info["episode"] = {"turns": self._turns, "messages": copy.deepcopy(self._messages), "reward": self._return,
                               "reward_components": {COMPONENT: self._return}}
        return copy.deepcopy(self._messages), reward, terminated, truncated, info

    def render(self) -> str | None:
        """``ansi``: the transcript as text, one ``[role]`` header per message."""
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{m['role']}]\n{m['content']}" for m in self._messages)

    def close(self) -> None:
        """Close the session (the server drops its environment instance)."""
        self._done = True
        self._disconnect()

    # ------------------------------------------------------------------ protocol
    def _discover(self) -> None:
        """Read ``/schema`` once: which action field carries the text, which observation field to show."""
        if self.action_field is not None and self.observation_field is not None:
            return
        from rlvr.bounded_http import BlockingClient, BodyTooLarge, RequestTimeout

        try:
            with BlockingClient(timeout=self.timeout, max_body_bytes=self.max_message_bytes, max_connections=1) as client:
                reply = client.get(self.url + "/schema")
        except RequestTimeout:
            raise OpenEnvError(f"{self.url}/schema: no complete answer within {self.timeout:g} s "
                               "(is the server up? pass -E timeout=SECONDS to wait longer)") from None
        except BodyTooLarge as e:
            raise OpenEnvError(f"{self.url}/schema: {e}") from None
        except Exception as e:
            raise OpenEnvError(f"cannot reach the OpenEnv server at {self.url} ({type(e).__name__}: {e or 'no detail'}); "
                               "is it running and is the URL right?") from None
        if reply.status_code != 200:
            raise OpenEnvError(f"{self.url}/schema answered HTTP {reply.status_code}: {reply.text[:200]!r} (is this an OpenEnv server?)")
        try:
            schema = reply.json()
        except ValueError:
            raise OpenEnvError(f"{self.url}/schema did not answer JSON: {reply.text[:200]!r} (is this an OpenEnv server?)") from None
        if not isinstance(schema, Mapping) or not isinstance(schema.get("action"), Mapping):
            raise OpenEnvError(f"{self.url}/schema has no action schema: {reply.text[:200]!r} (is this an OpenEnv server?)")
        if self.action_field is None:
            self.action_field = text_field(schema["action"], "action_field", "action")
        if self.observation_field is None and isinstance(schema.get("observation"), Mapping):
            try:
                self.observation_field = text_field(schema["observation"], "observation_field", "observation")
            except (ConfigError, OpenEnvError):
                self.observation_field = ""  # no single text field: observations are shown as JSON

    def _connect(self) -> None:
        from websockets.sync.client import connect

        try:
            self._ws = connect(_websocket_url(self.url), open_timeout=self.timeout, close_timeout=1.0,
                               max_size=self.max_message_bytes, compression=None, proxy=None,
                               ping_interval=None)  # every exchange has its own deadline; a keepalive ping
            # that waits on a busy server (the model may think for minutes) would only end good sessions
        except Exception as e:
            self._ws = None
            raise OpenEnvError(f"cannot reach the OpenEnv server at {self.url} to open a session on /ws "
                               f"({type(e).__name__}: {e or 'no detail'}); is it running and is the URL right?") from None

    def _disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # the server may already be gone; the session is over either way
                log.debug("closing the session on %s failed", self.url, exc_info=True)

    def _exchange(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send one message and read its answer, within ``timeout``; the validated observation data."""
        from websockets.exceptions import ConnectionClosed, PayloadTooBig

        assert self._ws is not None
        try:
            self._ws.send(json.dumps({"type": kind, "data": data}))
            raw = self._ws.recv(timeout=self.timeout)
        except TimeoutError:
            raise OpenEnvError(f"{self.url}: no answer to {kind} within {self.timeout:g} s "
                               "(pass -E timeout=SECONDS to wait longer)") from None
        except PayloadTooBig:
            raise OpenEnvError(f"{self.url}: the answer to {kind} is over the {self.max_message_bytes:,} byte cap "
                               "(pass -E max_message_bytes=N to allow more)") from None
        except ConnectionClosed as e:
            too_big = getattr(getattr(e, "rcvd", None), "code", None) == 1009 or getattr(getattr(e, "sent", None), "code", None) == 1009
            if too_big:
                raise OpenEnvError(f"{self.url}: the answer to {kind} is over the {self.max_message_bytes:,} byte cap "
                                   "(pass -E max_message_bytes=N to allow more)") from None
            raise OpenEnvError(f"{self.url}: the server closed the session during {kind} ({e}); did it stop or crash?") from None
        except OSError as e:
            raise OpenEnvError(f"{self.url}: the connection failed during {kind} ({type(e).__name__}: {e})") from None
        return self._parse(kind, raw)

    def _parse(self, kind: str, raw: Any) -> dict[str, Any]:
        shown = (raw[:200] if isinstance(raw, (str, bytes)) else type(raw).__name__)
        try:
            message = json.loads(raw)
        except (ValueError, TypeError):
            raise OpenEnvError(f"{self.url}: the answer to {kind} is not JSON: {shown!r}") from None
        if not isinstance(message, Mapping):
            raise OpenEnvError(f"{self.url}: the answer to {kind} is not an OpenEnv message: {shown!r}")
        payload = message.get("data")
        if message.get("type") == "error":
            detail = payload.get("message") if isinstance(payload, Mapping) else payload
            errors = payload.get("errors") if isinstance(payload, Mapping) else None
            hint = f" {json.dumps(errors, default=str)[:300]}" if errors else ""
            fix = f" (the action was {{{self.action_field!r}: TEXT}}; pass -E action_field=NAME to use another field)" \
                if kind == "step" and errors else ""
            raise OpenEnvError(f"{self.url}: the server refused {kind}: {str(detail)[:300]}{hint}{fix}")
        if message.get("type") != "observation" or not isinstance(payload, Mapping):
            raise OpenEnvError(f"{self.url}: the answer to {kind} is not an observation: {shown!r}")
        observation = payload.get("observation", {})
        if not isinstance(observation, Mapping):
            raise OpenEnvError(f"{self.url}: the observation in the answer to {kind} is not an object: {shown!r}")
        reward = payload.get("reward")
        if reward is None:
            reward = 0.0
        if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
            if isinstance(reward, bool):
                reward = float(reward)
            else:
                raise OpenEnvError(f"{self.url}: the reward in the answer to {kind} is not a finite number: {reward!r}")
        done = payload.get("done", False)
        if not isinstance(done, bool):
            raise OpenEnvError(f"{self.url}: 'done' in the answer to {kind} is not true/false: {done!r}")
        return {"observation": dict(observation), "reward": float(reward), "done": done}

    def _observation_text(self, observation: Mapping[str, Any]) -> str:
        field = self.observation_field
        if field:
            value = observation.get(field, "")
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        else:
            shown = {k: v for k, v in observation.items() if k not in _PROTOCOL_FIELDS}
            if len(shown) == 1 and isinstance(next(iter(shown.values())), str):
                text = next(iter(shown.values()))
            else:
                text = json.dumps(shown, ensure_ascii=False, sort_keys=True, default=str) if shown else ""
        return text[:MAX_CONTENT_CHARS].encode("utf-8", "replace").decode("utf-8")

    def __repr__(self) -> str:
        return f"<OpenEnvEnv {self.url} action_field={self.action_field!r} max_turns={self.max_turns}>"


def register_all() -> None:
    """Register ``openenv/Server-v0`` (takes ``url=``) and the ``openenv:URL`` id scheme."""
    from rlvr.envs.registry import register_scheme

    if GENERIC_ID not in gym.registry:
        gym.register(id=GENERIC_ID, entry_point=OpenEnvEnv, disable_env_checker=True, order_enforce=False)
    register_scheme(SCHEME, GENERIC_ID, url_of_id, origin="openenv", package="openenv-core (server side)")


__all__ = ["OpenEnvEnv", "OpenEnvError", "GENERIC_ID", "SCHEME", "normalize_url", "url_of_id", "text_field", "register_all"]
