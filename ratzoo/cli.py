"""What the command lines (``python -m ratzoo evaluate``, ``benchmark``, ``certify``; the
config-to-flags part ``python -m train`` too) share.

Private to the library (not in ``ratzoo.__all__``): how ``--model`` and ``--data-dir`` are
loaded and which exit code a failure gets (:class:`CommandError`), the device rule, the
software versions and model description a record states, and flags derived from a config
dataclass (:func:`option`, :func:`add_options` on an :class:`ArgumentParser`, the ``type=``
parsers :func:`budget`, :func:`positive_int`, :func:`nonnegative_int` and
:func:`comma_separated`, and :func:`renamed` for a flag whose old name is refused; a flag whose
old name still works lists it in ``option(flags=...)``). Files are written by :mod:`ratzoo._io`.

Exit codes: 0 ok, 2 a bad argument (a name or callable that names no model), 3 a model or
data error (a broken checkpoint, an unreachable Hub, a missing dataset, the user's callable
failing).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .attacks.base import parse_budget

BAD_ARGUMENT = 2
MODEL_OR_DATA_ERROR = 3


class CommandError(Exception):
    """A failure a command line reports as ``error: <message>`` and exits with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def report(self) -> int:
        """Print the message on stderr; return the exit code."""
        print(f"error: {self}", file=sys.stderr)
        return self.code


@contextlib.contextmanager
def model_errors() -> Iterator[None]:
    """Turn the zoo's errors while resolving or loading ``--model`` into :class:`CommandError`.

    ``KeyError`` (an unknown name) and ``ValueError`` (a callable that names no model) are bad
    arguments; anything else (``CheckpointError``, the user's callable raising) is a model error,
    whose own message says what to do."""
    try:
        yield
    except (KeyError, ValueError) as e:
        raise CommandError(str(e.args[0]) if e.args else str(e), BAD_ARGUMENT) from None
    except Exception as e:
        raise CommandError(str(e), MODEL_OR_DATA_ERROR) from None


def load_model(spec: str, device: str | torch.device) -> nn.Module:
    """``--model``: :func:`ratzoo.zoo.load_model_spec` (a zoo name, a checkpoint folder,
    ``hf-hub:OWNER/NAME`` or ``module.path:callable``), in eval mode, on ``device``.

    Raises:
        CommandError: as :func:`model_errors`.
    """
    from .zoo import load_model_spec

    with model_errors():
        return load_model_spec(spec, device)


def load_data(split: str, root: str | None) -> tuple[Any, Any]:
    """``--data-dir``: :func:`ratzoo.load_cifar10`'s ``(images, labels)`` of ``split``.

    Raises:
        CommandError: the dataset cannot be read (exit 3).
    """
    from .data import DatasetError, load_cifar10

    try:
        return load_cifar10(split, root=root)
    except DatasetError as e:
        raise CommandError(str(e), MODEL_OR_DATA_ERROR) from None


def device(name: str | None) -> str:
    """``--device``: the one given, or (``None`` or ``"auto"``) cuda when available, else cpu."""
    if name and name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def set_threads(threads: int) -> None:
    """``--threads``: torch's CPU threads (0: leave torch's default)."""
    if threads:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- config -> flags


def option(default: Any, help: str, *, meta: dict[str, Any] | None = None, **arg: Any) -> Any:
    """A config dataclass field that is also a flag (``--part-size`` for ``part_size``).

    Args:
        default: the field's default, and the flag's.
        help: the flag's help.
        meta: more metadata for the config's own use (e.g. the benchmark's ``key``).
        **arg: more ``add_argument`` options: ``flags`` (the option strings, instead of the
            field's name; the first is the one help and errors name, the others are its
            other names, e.g. its name before a rename), ``type`` (instead of the one the
            annotation names), ``choices``, ``required``.
    """
    return dataclasses.field(default=default, metadata={"help": help, "arg": arg, **(meta or {})})


_TYPES = {"int": int, "float": float}


def budget(flag: str) -> Callable[[str], float]:
    """A ``type=`` for a budget flag (``8/255``, ``0.5``): :func:`~ratzoo.attacks.base.parse_budget`,
    whose refusal argparse reports (exit 2) in its own words, naming ``flag``."""

    def parse(text: str) -> float:
        try:
            return parse_budget(text, flag)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def positive_int(flag: str) -> Callable[[str], int]:
    """A ``type=`` for a count flag (images, steps, draws): an integer >= 1, else refused by
    argparse (exit 2) with ``flag``, the value and what it takes named."""
    return _int_from(1, "a positive integer", flag)


def nonnegative_int(flag: str) -> Callable[[str], int]:
    """A ``type=`` for a flag whose 0 means "none" or "the default" (an offset, threads, parts):
    an integer >= 0, else refused by argparse (exit 2) as :func:`positive_int` refuses."""
    return _int_from(0, "an integer >= 0", flag)


def _int_from(minimum: int, what: str, flag: str) -> Callable[[str], int]:
    """A ``type=`` for an integer >= ``minimum``, refused with ``flag must be <what>, got <value>``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be {what}, got {value}")
        return value

    parse.minimum, parse.what = minimum, what  # for range_errors: one check for flags and Python-built configs
    return parse


def range_errors(config: Any) -> list[str]:
    """What of a config built in Python (not parsed) its flags' :func:`positive_int` /
    :func:`nonnegative_int` would refuse: ``"<field> must be <what>, got <value>"`` per field."""
    errs = []
    for f in dataclasses.fields(config):
        check, value = f.metadata.get("arg", {}).get("type"), getattr(config, f.name)
        if hasattr(check, "minimum") and isinstance(value, int) and value < check.minimum:
            errs.append(f"{f.name} must be {check.what}, got {value}")
    return errs


def comma_separated(parse: Callable[[str], Any], flag: str) -> Callable[[str], tuple[Any, ...]]:
    """A ``type=`` for a comma-separated flag: the tuple of ``parse`` of each item (empty items
    skipped), refused by argparse (exit 2) when it has none or ``parse`` refuses one."""

    def values(text: str) -> tuple[Any, ...]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{flag} is empty; give one or more comma-separated values")
        try:
            return tuple(parse(t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} takes comma-separated {getattr(parse, '__name__', 'value')} values, got {text!r}") from None

    return values


class ArgumentParser(argparse.ArgumentParser):
    """The parser :func:`add_options` fills: an ``argparse.ArgumentParser`` on which an
    abbreviation of several option strings of one flag (``--eo`` of ``--eot-samples`` and its
    old name ``--eot``) is that flag, as it was before the flag had a second name, instead of
    ambiguous; an abbreviation of two different flags is still refused."""

    def _get_option_tuples(self, option_string: str) -> list[tuple[Any, ...]]:
        seen: set[int] = set()
        out = []
        for t in super()._get_option_tuples(option_string):  # (action, option string, ...) per match
            if id(t[0]) not in seen:
                seen.add(id(t[0]))
                out.append(t)
        return out


def parser(command: str, config: type, description: str, *, epilog: str | None = None,
           show_defaults: bool = True) -> argparse.ArgumentParser:
    """The parser of ``python -m ratzoo COMMAND``: one flag per :func:`option` field of ``config``."""
    p = ArgumentParser(prog=f"python -m ratzoo {command}", description=description, epilog=epilog)
    add_options(p, config, show_defaults=show_defaults)
    return p


def add_options(parser: argparse.ArgumentParser, config: type, *, show_defaults: bool = True,
                unset_defaults: bool = False, bool_values: bool = False,
                types: Mapping[str, Callable[[str], Any]] | None = None) -> None:
    """One flag per :func:`option` field of the dataclass ``config``, in field order (on a
    :class:`ArgumentParser`, so that a flag's names abbreviate as one).

    A ``bool`` field is a switch (``store_true``); any other flag parses its value by the type
    its annotation names (``int``, ``float``, else ``str``; ``X | None`` as ``X``, its None
    default meaning "unset"), so a value of the wrong type is refused by argparse (exit 2), and
    defaults to the field's default. ``show_defaults`` appends `` (default X)`` to each help
    whose field has a default other than None or ``""`` (a tuple shown comma-separated, as it
    is typed). ``config(**vars(parser.parse_args()))`` then builds the config.

    For flags that override values from elsewhere (``python -m train``'s ``--preset``):

    - ``unset_defaults``: every flag defaults to None, so the flags given are the values that
      are not None; the help still shows the field's default.
    - ``bool_values``: a ``bool`` field takes an optional value (``--resume``, ``--resume true``,
      ``--co-guard off``) instead of being a switch, so that a field whose default is True can
      be turned off; the help shows its default.
    - ``types``: the ``type=`` of the fields whose annotation names a key (``{"float": f}``),
      instead of ``int`` or ``float``; a field's own ``type`` still comes first.
    """
    parse = {**_TYPES, "bool": _truth, **(types or {})}
    for f in dataclasses.fields(config):
        if "help" not in f.metadata:
            continue
        arg = dict(f.metadata["arg"])
        flags = arg.pop("flags", ("--" + f.name.replace("_", "-"),))
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        kind = kind.removesuffix(" | None")
        if kind == "bool" and not bool_values:
            parser.add_argument(*flags, dest=f.name, action="store_true", help=f.metadata["help"],
                                default=None if unset_defaults else False)
            continue
        if kind == "bool":
            arg.update(nargs="?", const=True)
        shown = show_defaults and f.default is not None and f.default != "" and not arg.get("required")
        default = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        arg.setdefault("type", parse.get(kind, str))
        parser.add_argument(*flags, dest=f.name, default=None if unset_defaults else f.default,
                            help=f.metadata["help"] + (f" (default {default})" if shown else ""), **arg)


def _truth(text: str) -> bool:
    """The ``type=`` of a bool flag that takes a value: ``1/true/yes/on`` or ``0/false/no/off``
    (argparse's ``type=bool`` would take any non-empty text, ``false`` too, as True)."""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def renamed(parser: argparse.ArgumentParser, old: str, new: str, why: str) -> None:
    """A hidden ``old`` flag that argparse refuses (exit 2) with ``old is now new (why)``, so that a
    command written before the rename fails in words instead of as an unrecognized argument."""
    message = f"{old} is now {new} ({why})"

    class Renamed(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
            parser.error(message)

    parser.add_argument(old, action=Renamed, nargs="?", dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
