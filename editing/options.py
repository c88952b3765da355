"""The option table: every setting of an edit, declared once.

Each field of `EditOptions` carries its `OptionSpec` (label, help, type, range or choices, or a
text's maximum length), and everything else is generated from it: the studio's settings widgets, the
CLI flags, the API's options dict, validation and the PNG metadata. A new option is one line here;
a model family's own option (say a text model's `tau`) is registered with its family
(`register_option`, from `families.register_family`) and is then an option like the others.

An option that a family declares (`ModelFamily.options`: VAR's `more_smooth`, a text model's `tau`)
is used by the families that declare it, and a request that sets it for a model of another family is
refused (families.check_request); the others (seed, candidates, mask, paste-back) apply to every model.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from var_core import SamplingOptions

from .errors import EditError, quoted
from .masks import POLICIES

FILLS = ("original", "neutral")
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class OptionSpec:
    """How one option is shown and checked. kind: int, float, bool or str: one of `choices`, or free
    text of at most `max_length` characters (one line, no control characters)."""

    kind: type
    label: str
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    step: float | None = None
    nullable: bool = False
    advanced: bool = False
    studio_default: Any = None
    max_length: int = 1000

    @property
    def text(self) -> bool:
        """Free text (a str without choices)."""
        return self.kind is str and not self.choices


def option(default: Any, kind: type, label: str, help: str, **spec: Any) -> Any:
    """A dataclass field carrying its OptionSpec."""
    return dataclasses.field(default=default, metadata={"spec": OptionSpec(kind, label, help, **spec)})


_SAMPLING = SamplingOptions()


@dataclass(frozen=True, init=False)
class EditOptions:
    """Everything that shapes an edit besides the picture, the mask and the mode.

    Defaults are the original VAR sampler's; a model family may start elsewhere (`families.family_defaults`:
    Infinity's are upstream's) and a model folder may bring its own (defaults.json).
    Every value is checked on construction; a mistake is an `EditError` of one sentence. Options
    registered by model families are keywords and attributes like the table's own; `extra` holds
    those that differ from their default, by name.
    """

    seed: int | None = option(
        None,
        int,
        "Seed",
        "Same seed, same settings, same picture: every run with it gives the same result. "
        "Empty = a new random seed each run (the seed used is reported).",
        low=0,
        high=MAX_SEED,
        nullable=True,
    )
    num_samples: int = option(
        1,
        int,
        "Candidates",
        "How many different results to draw at once to choose from.",
        low=1,
        high=64,
        step=1,
        studio_default=4,
    )
    cfg: float = option(
        _SAMPLING.cfg,
        float,
        "Follow the class or prompt",
        "How strongly an edit pushes towards its class or prompt; "
        "higher is more typical of it but less varied (classifier-free guidance, cfg).",
        low=0.0,
        high=50.0,
        step=0.1,
    )
    top_k: int = option(
        _SAMPLING.top_k,
        int,
        "Variety (top-k)",
        "Only the k most likely tokens may be drawn at each place; smaller is safer and plainer, 0 allows all.",
        low=0,
        high=1 << 17,
        step=1,
    )
    top_p: float = option(
        _SAMPLING.top_p,
        float,
        "Variety (top-p)",
        "Only the most likely tokens that together hold this share of "
        "the probability may be drawn; lower is safer and plainer, 0 allows all.",
        low=0.0,
        high=1.0,
        step=0.01,
    )
    more_smooth: bool = option(
        _SAMPLING.more_smooth,
        bool,
        "Smoother textures",
        "Blends similar tokens instead of picking one "
        "(Gumbel-softmax 'more smooth' sampling): softer, less noisy detail.",
    )
    fast: bool = option(
        _SAMPLING.fast,
        bool,
        "Fast mode",
        "Quicker, a little less faithful: the finest detail is worked out only where you painted. On a CPU with "
        "AMX or AVX512-BF16 it also uses a lighter number format for the finest scales and the decoding: measured "
        "on a 2-core Xeon with AMX, a 10 % in-paint 2.4x faster (3.8 s to 1.6 s), a generation 1.8x (5.2 s to 2.9 s) "
        "(a GPU does the same, its gain not yet measured). On other CPUs "
        "an in-paint gets 5-35 % faster (more with smaller masks) and a generation not at all. The layout stays "
        "the same; small details may come out differently (docs/speed.md).",
    )
    policy: str = option(
        "touch",
        str,
        "Which cells to redraw",
        "touch: every fine cell the mask touches and the coarse cells it "
        "mostly covers (best fit); strength: keep the coarse layout and colours, "
        "redraw only detail from the 'Keep the layout' scale on.",
        choices=POLICIES,
        advanced=True,
    )
    strength: int = option(
        0,
        int,
        "Keep the layout up to scale",
        "With the 'strength' policy: the scales before this one keep the "
        "picture's layout and colours, only finer detail is redrawn (0 redraws everything).",
        low=0,
        high=64,
        step=1,
        advanced=True,
    )
    dilation: int = option(
        0,
        int,
        "Grow the mask (cells)",
        "Grows the redrawn area by this many token cells of the finest scale, "
        "so the new content blends over a wider border (mask dilation).",
        low=0,
        high=16,
        step=1,
    )
    feather: int = option(
        8,
        int,
        "Soft edge (px)",
        "Width in pixels of the blend between new and original pixels inside the "
        "mask's edge (feather); pixels outside the mask are never changed.",
        low=0,
        high=256,
        step=1,
    )
    fill: str = option(
        "original",
        str,
        "Under the mask, start from",
        "original: the model sees what is painted over (keeps "
        "its colours); neutral: the area is first filled from its surroundings, to remove an object.",
        choices=FILLS,
    )
    context: float = option(
        0.5,
        float,
        "Context around the mask",
        "How much of the surroundings the model sees, as a share of the "
        "mask's size on each side; more context fits better, less gives more detail.",
        low=0.0,
        high=4.0,
        step=0.05,
        advanced=True,
    )
    paste_back: bool = option(
        True,
        bool,
        "Keep every unmasked pixel",
        "Paste the original back outside the mask, so only the painted area changes.",
        advanced=True,
    )

    extra: tuple[tuple[str, Any], ...] = dataclasses.field(default=(), repr=False)

    def __init__(self, **values: Any) -> None:
        extra = dict(values.pop("extra", ()))
        for f in dataclasses.fields(self):
            if "spec" in f.metadata:
                object.__setattr__(self, f.name, values.pop(f.name, f.default))
        object.__setattr__(self, "extra", tuple({**extra, **values}.items()))
        self.__post_init__()

    def __post_init__(self) -> None:
        """Check every value (an extended table's generated __init__ calls this too)."""
        for f in dataclasses.fields(self):
            if "spec" in f.metadata:
                object.__setattr__(self, f.name, check_value(f.name, spec_of(f), getattr(self, f.name)))
        for key, _ in self.extra:
            if key not in _REGISTERED:
                raise EditError(f"Unknown option {quoted(key)}; the options are {', '.join(option_names(type(self)))}.")
        checked = {key: check_value(key, _REGISTERED[key][1], value) for key, value in self.extra}
        object.__setattr__(self, "extra", tuple(sorted((k, v) for k, v in checked.items() if v != _REGISTERED[k][0])))

    def __getattr__(self, name: str) -> Any:
        """A registered family's option (only asked for names that are not the table's own)."""
        if name in _REGISTERED:
            return dict(self.__dict__.get("extra", ())).get(name, _REGISTERED[name][0])
        raise AttributeError(f"EditOptions has no option {name!r}.")

    @classmethod
    def from_dict(cls, given: Any, defaults: EditOptions | None = None) -> EditOptions:
        """Options from a JSON-like dict; keys not given keep `defaults` (the model's). Strict: unknown
        keys, wrong types, NaN and out-of-range values are refused."""
        if not isinstance(given, dict):
            raise EditError('Options must be a JSON object such as {"seed": 1}.')
        names = option_names(cls)
        for key in given:
            if key not in names:
                raise EditError(f"Unknown option {quoted(key)}; the options are {', '.join(names)}.")
        if defaults is None or isinstance(defaults, cls):
            base = defaults if defaults is not None else cls()
        else:  # defaults of a smaller table (a model's, for an extended one): the new options start at theirs
            base = cls(**defaults.to_dict())
        return base.replace(**given)

    def replace(self, **changes: Any) -> EditOptions:
        """A copy with some options changed (checked)."""
        own = {f.name for f in dataclasses.fields(self) if "spec" in f.metadata}
        extra = {**dict(self.extra), **{k: v for k, v in changes.items() if k not in own}}
        return dataclasses.replace(self, extra=tuple(extra.items()), **{k: v for k, v in changes.items() if k in own})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every option of the table, and of the registered ones that differ from their
        default (what PNG metadata and the API carry)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if "spec" in f.metadata}
        out.update(self.extra)
        return out

    def sampling(self) -> SamplingOptions:
        """The sampler's share of the options."""
        return SamplingOptions(self.cfg, self.top_k, self.top_p, self.more_smooth, self.fast)


_REGISTERED: dict[str, tuple[Any, OptionSpec]] = {}  # families' own options: name -> (default, spec)


def spec_of(f: dataclasses.Field) -> OptionSpec:
    return f.metadata["spec"]


def register_option(name: str, default: Any, spec: OptionSpec) -> None:
    """Add a family's own option to the table (the same name twice must mean the same option)."""
    if not name.isidentifier() or name == "extra":
        raise ValueError(f"An option's name must be an identifier, not {name!r}.")
    if name in {f.name for f in dataclasses.fields(EditOptions)} or _REGISTERED.get(name, (default, spec)) != (
        default,
        spec,
    ):
        raise ValueError(f"The option {name!r} is already in the table with another meaning.")
    check_value(name, spec, default)
    _REGISTERED[name] = (default, spec)


def unregister_option(name: str) -> None:
    """Remove a registered option (a test's toy family)."""
    _REGISTERED.pop(name, None)


def option_fields(cls: type = EditOptions) -> list[tuple[str, Any, OptionSpec]]:
    """(name, default, spec) of every option of `cls`, in declaration order, then the registered ones."""
    own = [(f.name, f.default, spec_of(f)) for f in dataclasses.fields(cls) if "spec" in f.metadata]
    return own + [(name, default, spec) for name, (default, spec) in _REGISTERED.items()]


def option_names(cls: type = EditOptions) -> list[str]:
    return [name for name, _, _ in option_fields(cls)]


def range_text(spec: OptionSpec) -> str:
    """' from LOW to HIGH' for numbers with a range, else ''."""
    if spec.low is None or spec.high is None:
        return ""
    show = (lambda v: str(int(v))) if spec.kind is int else (lambda v: f"{v:g}")
    return f" from {show(spec.low)} to {show(spec.high)}"


def check_value(name: str, spec: OptionSpec, value: Any, what: str = "Option") -> Any:
    """The value converted to the option's type, or an EditError of one sentence (about `what` `name`)."""
    if value is None and spec.nullable:
        return None
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise EditError(f"{what} '{name}' must be true or false, not {quoted(value)}.")
        return value
    if spec.text:
        return check_text(name, spec, value, what)
    if spec.kind is str:
        if value not in (spec.choices or ()):
            raise EditError(f"{what} '{name}' must be one of {', '.join(spec.choices or ())}, not {quoted(value)}.")
        return value
    return _check_number(name, spec, value, what)


def _check_number(name: str, spec: OptionSpec, value: Any, what: str) -> int | float:
    whole = spec.kind is int
    wanted = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EditError(f"{what} '{name}' must be {wanted}{range_text(spec)}, not {quoted(value)}.")
    if not math.isfinite(value):
        finite = wanted if whole else "a finite number"
        raise EditError(f"{what} '{name}' must be {finite}{range_text(spec)}, not {quoted(value)}.")
    if whole:
        if value != int(value):
            raise EditError(f"{what} '{name}' must be {wanted}{range_text(spec)}, not {quoted(value)}.")
        value = int(value)
    else:
        value = float(value)
    if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
        raise EditError(f"{what} '{name}' must be {wanted}{range_text(spec)}, not {quoted(value)}.")
    return value


def check_text(name: str, spec: OptionSpec, value: Any, what: str = "Option") -> str | None:
    """Free text: a str of at most `spec.max_length` characters without control characters; an empty
    one is not given (None) where the value may be left out."""
    if not isinstance(value, str):
        raise EditError(f"{what} '{name}' must be a text, not {type(value).__name__}.")
    if len(value) > spec.max_length:
        raise EditError(f"{what} '{name}' must be at most {spec.max_length} characters long, not {len(value)}.")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise EditError(f"{what} '{name}' must be one line of text without control characters.")
    if not value.strip() and spec.nullable:
        return None
    return value
